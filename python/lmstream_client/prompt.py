"""Llama 2 chat prompts, formatted exactly as Meta's reference `chat_completion`
(llama/generation.py) renders them, with BOS/EOS written as the literal `<s>`/`</s>` text that the
notebooks send (the server's tokenizer parses them); and the notebooks' sample instructions."""

__all__ = ["build_llama2_prompt", "get_instructions", "SYSTEM_CONTENT"]

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


def build_llama2_prompt(messages):
    """`messages`: a list of {"role": "system"|"user"|"assistant", "content": str}. An optional
    first system message is merged into the first user message; then roles must alternate user,
    assistant, user, ... and end with user (ValueError otherwise). Result, for system + two turns:

        <s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user1} [/INST] {answer1} </s><s>[INST] {user2} [/INST]

    Like Meta's code, each user turn (with the system block in front of the first) and each answer
    is .strip()ped; the system text itself is kept as given."""
    messages = list(messages)
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or not isinstance(m.get("content"), str):
            raise ValueError(f"each message needs a role and a string content, got {m!r}")
    if messages and messages[0]["role"] == "system":
        if len(messages) < 2:
            raise ValueError("a system message must be followed by a user message")
        messages = [{"role": messages[1]["role"],
                     "content": B_SYS + messages[0]["content"] + E_SYS + messages[1]["content"]}
                    ] + messages[2:]
    if not messages:
        raise ValueError("no messages")
    for i, m in enumerate(messages):
        want = "user" if i % 2 == 0 else "assistant"
        if m["role"] != want:
            raise ValueError("model only supports 'system', 'user' and 'assistant' roles, "
                             "starting with 'system', then 'user' and alternating (u/a/u/a/u...);"
                             f" message {i} has role {m['role']!r}")
    if messages[-1]["role"] != "user":
        raise ValueError("the last message must be from the user")
    prompt = ""
    for user, answer in zip(messages[::2], messages[1::2]):
        prompt += (f"<s>{B_INST} {user['content'].strip()} {E_INST} "
                   f"{answer['content'].strip()} </s>")
    prompt += f"<s>{B_INST} {messages[-1]['content'].strip()} {E_INST}"
    return prompt


# The system prompt of the aws-samples streaming notebooks (leading newline, indentation and the
# space after "AnyCompany." as in the original).
SYSTEM_CONTENT = (
    '\n'
    '    You are a friendly and knowledgeable email marketing agent, Mr.MightyMark, working at AnyCompany. \n'
    '    Your goal is to send email to subscribers to help them understand the value of the new product and generate excitement for the launch.\n'
    '\n'
    '    Here are some tips on how to achieve your goal:\n'
    '\n'
    '    Be personal. Address each subscriber by name and use a friendly and conversational tone.\n'
    '    Be informative. Explain the key features and benefits of the new product in a clear and concise way.\n'
    "    Be persuasive. Highlight how the new product can solve the subscriber's problems or improve their lives.\n"
    '    Be engaging. Use emojis to make your emails more visually appealing and interesting to read.\n'
    '\n'
    '    By following these tips, you can use email marketing to help your company launch a successful software product.\n'
    '    '
)


def get_instructions(user_content, system_content=SYSTEM_CONTENT):
    """The notebooks' message list: their system prompt (plus a trailing space, as they add) and
    `user_content`. A fresh list each call."""
    return [{"role": "system", "content": f"{system_content} "},
            {"role": "user", "content": f"{user_content}"}]
