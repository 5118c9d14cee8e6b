// Chat prompts (see chat.h). The built-in Llama 2 format follows Meta's llama/generation.py
// chat_completion: the system message is merged into the first user turn, every content is
// Python-str.strip()ped (the HF chat_template strips the same way), and each exchange is encoded
// on its own. Model chat_templates get apply_chat_template's context and go to chat/jinja.
#include "chat/chat.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "base/utf8.h"
#include "chat/jinja.h"

namespace lmstream {
namespace {

constexpr std::string_view kBeginInst = "[INST]";
constexpr std::string_view kEndInst = "[/INST]";
constexpr std::string_view kBeginSys = "<<SYS>>\n";
constexpr std::string_view kEndSys = "\n<</SYS>>\n\n";

// Python str.strip() on UTF-8 text.
std::string_view strip(std::string_view s) {
  char32_t cp = 0;
  size_t begin = 0;
  while (begin < s.size()) {
    size_t len = utf8::decode(s, begin, cp);
    if (len == 0 || !utf8::is_python_space(cp)) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && end - start < 4 &&
           (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
      --start;
    size_t len = utf8::decode(s, start, cp);
    if (len != end - start || !utf8::is_python_space(cp)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

struct Exchange {
  std::string user;                   // stripped
  std::optional<std::string> answer;  // stripped; none for the final user turn
};

// Validates the roles and returns the exchanges in order; the last one has no answer.
std::vector<Exchange> exchanges(std::span<const ChatMessage> messages) {
  if (messages.empty()) throw std::invalid_argument("chat: no messages");
  size_t first = 0;
  std::string system_prefix;
  if (messages[0].role == "system") {
    if (messages.size() == 1)
      throw std::invalid_argument("chat: a system message must be followed by a user message");
    system_prefix.append(kBeginSys).append(messages[0].content).append(kEndSys);
    first = 1;
  }
  std::vector<Exchange> out;
  for (size_t i = first; i < messages.size(); ++i) {
    const bool want_user = (i - first) % 2 == 0;
    const std::string_view expected = want_user ? "user" : "assistant";
    if (messages[i].role != expected) {
      throw std::invalid_argument(
          "chat: message " + std::to_string(i) + " has role '" + messages[i].role +
          "', expected '" + std::string(expected) +
          "' (roles must be an optional first 'system', then alternate 'user'/'assistant')");
    }
    if (want_user) {
      std::string content = i == first ? system_prefix + messages[i].content : messages[i].content;
      out.push_back({std::string(strip(content)), std::nullopt});
    } else {
      out.back().answer = std::string(strip(messages[i].content));
    }
  }
  if (out.back().answer)
    throw std::invalid_argument("chat: the last message must have role 'user'");
  return out;
}

std::string inst(const std::string& user) {
  std::string s;
  s.append(kBeginInst).append(" ").append(user).append(" ").append(kEndInst);
  return s;
}

}  // namespace

std::vector<int32_t> llama2_chat_tokens(const Tokenizer& tok,
                                        std::span<const ChatMessage> messages) {
  std::vector<int32_t> ids;
  for (const Exchange& e : exchanges(messages)) {
    std::string text = inst(e.user);
    if (e.answer) text.append(" ").append(*e.answer).append(" ");
    ids.push_back(tok.bos());
    std::vector<int32_t> part = tok.encode_plain(text);
    ids.insert(ids.end(), part.begin(), part.end());
    if (e.answer) ids.push_back(tok.eos());
  }
  return ids;
}

std::string llama2_chat_text(std::span<const ChatMessage> messages) {
  std::string out;
  for (const Exchange& e : exchanges(messages)) {
    out.append("<s>").append(inst(e.user));
    if (e.answer) out.append(" ").append(*e.answer).append(" </s>");
  }
  return out;
}

std::string render_chat_template(std::string_view tpl, std::span<const ChatMessage> messages,
                                 const std::string& bos, const std::string& eos,
                                 bool add_generation_prompt) {
  // ordered: a message is {role, content} in that order, as Python dicts built by clients are.
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::ordered_json context = {{"messages", std::move(msgs)},
                                    {"bos_token", bos},
                                    {"eos_token", eos},
                                    {"add_generation_prompt", add_generation_prompt}};
  return render_jinja(tpl, context);
}

}  // namespace lmstream
