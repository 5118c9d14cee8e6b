// Element-wise and attention kernels of the forward pass (fp32 activations), dispatched with
// Highway. Each function's reduction order is fixed, so results never depend on batching.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lmstream {

// out = x / sqrt(mean(x^2) + eps) * w
void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps);
// g = silu(g) * u
void silu_mul(float* g, const float* u, int64_t n);
// x += y
void add_inplace(float* x, const float* y, int64_t n);
void f32_to_f16(const float* x, uint16_t* y, int64_t n);

// Reductions over one logits row, for the sampler.
struct RowMax {
  float value;    // largest non-NaN value (-inf when there is none)
  int64_t index;  // lowest index holding it (0 when there is none)
  bool any_nan;
};
RowMax row_max(const float* x, int64_t n);
// Sum over i of exp(x[i] - shift); -inf terms count 0, x must hold no NaN and no +inf. With
// out, also stores each term there.
double sum_exp(const float* x, int64_t n, float shift, float* out = nullptr);

// Rotary embedding of n_heads heads of head_dim each, in place, with cos/sin of this position
// (head_dim/2 values each). interleaved: pairs (2i, 2i+1); otherwise pairs (i, i + head_dim/2).
void rope(float* x, int n_heads, int head_dim, const float* cos, const float* sin,
          bool interleaved);

// Causal attention of the query heads that share one KV head, over n_pos cached positions read
// through a block table. Within a block of one KV head, K is stored transposed,
// [head_dim][block_size], so scores of a whole block come from head_dim vector FMAs, and V is
// stored [block_size][head_dim]. Elements are fp16 when f16, else fp32.
struct AttnGroup {
  const float* q;  // n_heads * head_dim values, already rotated
  int n_heads;     // query heads sharing this KV head
  int head_dim;
  int n_pos;
  const uint8_t* k_base;  // K of block 0 of this layer and KV head
  const uint8_t* v_base;  // V of block 0 of this layer and KV head
  const int32_t* table;
  int block_size;
  size_t block_stride;  // bytes from one block to the next
  bool f16;
  float* scores;  // n_heads * n_pos scratch
  float* out;     // n_heads * head_dim results
};
void attention_group(const AttnGroup& a);

}  // namespace lmstream
