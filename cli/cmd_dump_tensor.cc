// `lmstream dump-tensor FILE.gguf NAME`: one tensor of a GGUF file decoded to float32, for
// checking the format decoders against an independent reference (tests/test_quant_formats.py).
// --packed decodes through the matmul kernels' repacked layout instead (Matrix::prepare, then
// matrix_row_to_f32), i.e. exactly the weights the kernels multiply.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command.h"
#include "kernels/matmul.h"
#include "model/gguf.h"
#include "model/mmap.h"

namespace lmstream::cli {
namespace {

struct DumpArgs {
  std::string file, tensor, out;
  bool packed = false;
};

void run(const DumpArgs& a) {
  const auto f = MappedFile::open(a.file);
  const GgufFile g = parse_gguf(f->data(), f->size(), a.file);
  const GgufTensorInfo* ti = g.find_tensor(a.tensor);
  if (!ti) throw std::invalid_argument(a.file + ": no tensor '" + a.tensor + "'");
  int64_t rows = 1;
  for (size_t i = 1; i < ti->ne.size(); ++i) rows *= ti->ne[i];
  const int64_t cols = ti->ne.empty() ? 1 : ti->ne[0];
  const uint8_t* data = f->data() + g.data_offset + ti->offset;
  std::vector<float> out(size_t(rows) * size_t(cols));
  if (a.packed) {
    const Tensor t{a.tensor, ti->type, rows, cols, data};
    const Matrix m = Matrix::prepare(t);
    for (int64_t r = 0; r < rows; ++r) matrix_row_to_f32(m, r, out.data() + r * cols);
  } else {
    const size_t rb = dtype_row_bytes(ti->type, cols);
    for (int64_t r = 0; r < rows; ++r)
      dequantize_row(ti->type, data + size_t(r) * rb, out.data() + r * cols, cols);
  }
  FILE* o = std::fopen(a.out.c_str(), "wb");
  if (!o) throw std::runtime_error("cannot write " + a.out);
  const size_t w = std::fwrite(out.data(), sizeof(float), out.size(), o);
  if (std::fclose(o) != 0 || w != out.size()) throw std::runtime_error("cannot write " + a.out);
}

const Register reg(
    "dump-tensor", "Write one GGUF tensor decoded to float32 (format checks)", [](CLI::App& app) {
      auto a = std::make_shared<DumpArgs>();
      app.add_option("file", a->file, "GGUF file")->required();
      app.add_option("tensor", a->tensor, "tensor name")->required();
      app.add_option("--out,-o", a->out, "output file: float32 [rows][cols]")->required();
      app.add_flag("--packed", a->packed, "decode through the matmul kernels' repacked layout");
      app.callback([a] { run(*a); });
    });

}  // namespace
}  // namespace lmstream::cli
