// colorrt GPU kernels: the CUDA twins of colorrt/kernels/{color,resize,pipeline}.py.
//
// Compiled at run time by CuPy (NVRTC) into one RawModule; colorrt/kernels/cuda.py launches the
// extern "C" kernels below and passes every table (LUTs, resize taps, colour matrices) computed by
// the NumPy reference, so both paths share one definition of the maths.
//
// Each kernel is a grid-stride loop over a flat output index that calls a __host__ __device__
// function per element. Built with -DCOLORRT_HOST_TWINS (nvcc, host side), every kernel also gets a
// plain C twin `host_<name>` with the same parameters that runs the same per-element function in a
// loop on the CPU: the tests compare those twins with the NumPy reference on machines without a GPU.

#if !defined(__CUDACC_RTC__)
#include <math.h>
#endif

typedef long long i64;

#define CRT_FN __host__ __device__ inline

#ifdef COLORRT_HOST_TWINS
#define CRT_HOST_TWIN(name, params, count, call) \
  extern "C" void host_##name params {           \
    for (i64 i = 0; i < (count); ++i) call;      \
  }
#else
#define CRT_HOST_TWIN(name, params, count, call)
#endif

// A grid-stride kernel `name` over i in [0, count) calling `call` per element (and its host twin).
#define CRT_KERNEL(name, params, count, call)                                              \
  extern "C" __global__ void name params {                                                 \
    const i64 stride = (i64)blockDim.x * gridDim.x;                                        \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (count); i += stride) call; \
  }                                                                                        \
  CRT_HOST_TWIN(name, params, count, call)

// ------------------------------------------------------------------ constants (color.py)

#define SRGB_KNEE 0.04045f        // encoded sRGB value where the linear segment ends
#define LINEAR_KNEE 0.0031308f    // the same point in linear light
#define LAB_EPSILON 0.008856f     // t below which CIE f(t) is linear
#define LAB_F_KNEE 0.2068966f     // f value at that point (6/29)
#define LAB_KAPPA 7.787f          // slope of the linear segment of f
#define LAB_F_OFFSET (16.0f / 116.0f)

// ------------------------------------------------------------------ per-element maths

CRT_FN float srgb_to_linear(float x) {
  if (x <= SRGB_KNEE) return x / 12.92f;
  return powf(fmaxf((x + 0.055f) / 1.055f, 0.0f), 2.4f);
}

CRT_FN float linear_to_srgb(float x) {
  if (x <= LINEAR_KNEE) return x * 12.92f;
  return powf(x, 1.0f / 2.4f) * 1.055f - 0.055f;
}

CRT_FN float lab_f(float t) { return t <= LAB_EPSILON ? t * LAB_KAPPA + LAB_F_OFFSET : cbrtf(t); }

CRT_FN float lab_f_inverse(float f) {
  return f <= LAB_F_KNEE ? (f - LAB_F_OFFSET) / LAB_KAPPA : f * f * f;
}

CRT_FN float y_to_l(float y) { return lab_f(y) * 116.0f - 16.0f; }

CRT_FN float clip_unit(float x) { return fminf(fmaxf(x, 0.0f), 1.0f); }

// sRGB grey level (0..1) of the neutral colour of lightness L (pipeline.l_to_gray).
CRT_FN float l_to_gray(float lightness) {
  const float y = lab_f_inverse((lightness + 16.0f) / 116.0f);
  return linear_to_srgb(clip_unit(y));
}

// uint8 code of linear light through the threshold table of color.linear_to_srgb_u8.
CRT_FN unsigned char linear_to_u8(float lin, const unsigned char* base, const float* threshold,
                                  int cells) {
  if (!(lin >= 0.0f)) return 0;  // negative and NaN
  const float x = fminf(lin, 1.0f);
  int cell = (int)(x * (float)cells);
  cell = cell < cells ? cell : cells - 1;
  return (unsigned char)(base[cell] + (threshold[cell] <= x ? 1 : 0));
}

// float -> IEEE half bits, round to nearest even (the device uses the hardware conversion).
CRT_FN unsigned short float_to_half_bits(float value) {
#ifdef __CUDA_ARCH__
  unsigned short half;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(half) : "f"(value));
  return half;
#else
  union {
    float f;
    unsigned int u;
  } bits;
  bits.f = value;
  const unsigned int x = bits.u;
  const unsigned int sign = (x >> 16) & 0x8000u;
  unsigned int mantissa = x & 0x7fffffu;
  const int exponent = (int)((x >> 23) & 0xffu);
  if (exponent == 255) return (unsigned short)(sign | 0x7c00u | (mantissa ? 0x200u : 0u));
  const int e = exponent - 127 + 15;
  if (e >= 31) return (unsigned short)(sign | 0x7c00u);
  if (e <= 0) {  // half subnormal (or zero)
    if (e < -10) return (unsigned short)sign;
    mantissa |= 0x800000u;
    const int shift = 14 - e;
    unsigned int half = mantissa >> shift;
    const unsigned int rest = mantissa & ((1u << shift) - 1u);
    const unsigned int middle = 1u << (shift - 1);
    if (rest > middle || (rest == middle && (half & 1u))) ++half;
    return (unsigned short)(sign | half);
  }
  unsigned int half = ((unsigned int)e << 10) | (mantissa >> 13);
  const unsigned int rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // a carry rounds up to inf
  return (unsigned short)(sign | half);
#endif
}

CRT_FN void store(float* out, i64 index, float value) { out[index] = value; }
CRT_FN void store(unsigned short* out, i64 index, float value) { out[index] = float_to_half_bits(value); }

// ------------------------------------------------------------------ image -> full-res L

// Colour pixels (3 or 4 channels, alpha ignored) through the per-channel Y lookup tables
// (luts = [Y_r | Y_g | Y_b], each `levels` entries), as color.rgb_to_l does for integer images.
template <typename T>
CRT_FN void rgb_to_l_at(i64 i, const T* src, int channels, const float* luts, int levels, float* out) {
  const T* p = src + i * channels;
  float y = luts[p[0]];
  y += luts[levels + p[1]];
  y += luts[2 * levels + p[2]];
  out[i] = y_to_l(y);
}

template <typename T>
CRT_FN void grey_to_l_at(i64 i, const T* src, int channels, const float* lut, float* out) {
  out[i] = lut[src[i * channels]];
}

// Float pixels in 0..1 (clipped); channels == 1 is grey.
CRT_FN void float_to_l_at(i64 i, const float* src, int channels, const float* weights, float* out) {
  const float* p = src + i * channels;
  float y;
  if (channels == 1) {
    y = srgb_to_linear(clip_unit(p[0]));
  } else {
    y = srgb_to_linear(clip_unit(p[0])) * weights[0];
    y += srgb_to_linear(clip_unit(p[1])) * weights[1];
    y += srgb_to_linear(clip_unit(p[2])) * weights[2];
  }
  out[i] = y_to_l(y);
}

CRT_KERNEL(rgb_to_l_u8,
           (const unsigned char* src, int channels, const float* luts, float* out, i64 count),
           count, rgb_to_l_at<unsigned char>(i, src, channels, luts, 256, out))
CRT_KERNEL(rgb_to_l_u16,
           (const unsigned short* src, int channels, const float* luts, float* out, i64 count),
           count, rgb_to_l_at<unsigned short>(i, src, channels, luts, 65536, out))
CRT_KERNEL(grey_to_l_u8,
           (const unsigned char* src, int channels, const float* lut, float* out, i64 count),
           count, grey_to_l_at<unsigned char>(i, src, channels, lut, out))
CRT_KERNEL(grey_to_l_u16,
           (const unsigned short* src, int channels, const float* lut, float* out, i64 count),
           count, grey_to_l_at<unsigned short>(i, src, channels, lut, out))
CRT_KERNEL(float_to_l,
           (const float* src, int channels, const float* weights, float* out, i64 count),
           count, float_to_l_at(i, src, channels, weights, out))

// ------------------------------------------------------------------ separable resize (resize.py)

// Output row r of each plane: sum_k weight[r, k] * src[index[r, k], :]. Planes are (in_h, width).
CRT_FN float rows_tap(i64 i, const float* src, int in_h, int width, int out_h, int taps,
                      const int* index, const float* weight) {
  const i64 x = i % width;
  const i64 row = (i / width) % out_h;
  const i64 plane = i / ((i64)width * out_h);
  const float* base = src + plane * in_h * (i64)width + x;
  const int* idx = index + row * taps;
  const float* w = weight + row * taps;
  float sum = base[(i64)idx[0] * width] * w[0];
  for (int k = 1; k < taps; ++k) sum += base[(i64)idx[k] * width] * w[k];
  return sum;
}

// Output column c of each row: sum_k weight[c, k] * src[row, index[c, k]]. Rows are in_w long.
CRT_FN float cols_tap(i64 row, i64 column, const float* src, int in_w, int taps, const int* index,
                      const float* weight) {
  const float* base = src + row * in_w;
  const int* idx = index + column * taps;
  const float* w = weight + column * taps;
  float sum = base[idx[0]] * w[0];
  for (int k = 1; k < taps; ++k) sum += base[idx[k]] * w[k];
  return sum;
}

CRT_KERNEL(resize_rows,
           (const float* src, int in_h, int width, int out_h, int taps, const int* index,
            const float* weight, float* dst, i64 count),
           count, dst[i] = rows_tap(i, src, in_h, width, out_h, taps, index, weight))
CRT_KERNEL(resize_cols,
           (const float* src, int in_w, int out_w, int taps, const int* index, const float* weight,
            float* dst, i64 count),
           count, dst[i] = cols_tap(i / out_w, i % out_w, src, in_w, taps, index, weight))

// ------------------------------------------------------------------ preprocess (pipeline.preprocess)

#define MODE_L 0         // channel 0 = L * scale + offset
#define MODE_GRAY_RGB 1  // channels 0..2 = l_to_gray(L) * scale + offset
#define MODE_L_HINTS 2   // channel 0 as MODE_L, channels 1, 2 = 0, channel 3 = mask_offset (no hint)

// Last resize pass (columns) fused with the contract's normalization, the NCHW layout and the
// output type. `rows` holds the row-resized L planes, (n, out_h, in_w).
template <typename T>
CRT_FN void preprocess_at(i64 i, const float* rows, int out_h, int in_w, int out_w, int taps,
                          const int* index, const float* weight, int mode, int channels, float scale,
                          float offset, float mask_offset, T* out) {
  const i64 area = (i64)out_h * out_w;
  const i64 image = i / area;
  const i64 pixel = i % area;
  const float lightness = cols_tap(i / out_w, i % out_w, rows, in_w, taps, index, weight);
  T* dst = out + image * channels * area + pixel;
  if (mode == MODE_GRAY_RGB) {
    const float grey = l_to_gray(lightness) * scale + offset;
    for (int c = 0; c < 3; ++c) store(dst, c * area, grey);
    return;
  }
  store(dst, 0, lightness * scale + offset);
  if (mode == MODE_L_HINTS) {
    store(dst, area, 0.0f);
    store(dst, 2 * area, 0.0f);
    store(dst, 3 * area, mask_offset);
  }
}

#define CRT_PREPROCESS_PARAMS(T)                                                             \
  (const float* rows, int out_h, int in_w, int out_w, int taps, const int* index,             \
   const float* weight, int mode, int channels, float scale, float offset, float mask_offset, \
   T* out, i64 count)
#define CRT_PREPROCESS_CALL(T)                                                                 \
  preprocess_at<T>(i, rows, out_h, in_w, out_w, taps, index, weight, mode, channels, scale, offset, \
                   mask_offset, out)

CRT_KERNEL(preprocess_cols_f32, CRT_PREPROCESS_PARAMS(float), count, CRT_PREPROCESS_CALL(float))
CRT_KERNEL(preprocess_cols_f16, CRT_PREPROCESS_PARAMS(unsigned short), count,
           CRT_PREPROCESS_CALL(unsigned short))

// ------------------------------------------------------------------ decode_ab at render size

// RGB model output (n, 3, hw) -> clip(y * scale + offset, 0, 1) -> CIE Lab -> (n, 2, hw) ab.
// t_from_rgb: the 3x3 matrix taking linear RGB to XYZ / white, row-major.
CRT_FN void rgb_to_ab_at(i64 i, const float* y, float scale, float offset, const float* t_from_rgb,
                         float* ab, i64 hw) {
  const i64 image = i / hw;
  const i64 pixel = i % hw;
  const float* src = y + image * 3 * hw + pixel;
  float lin[3];
  for (int c = 0; c < 3; ++c) lin[c] = srgb_to_linear(clip_unit(src[c * hw] * scale + offset));
  float f[3];
  for (int r = 0; r < 3; ++r) {
    const float* m = t_from_rgb + 3 * r;
    float t = lin[0] * m[0];
    t += lin[1] * m[1];
    t += lin[2] * m[2];
    f[r] = lab_f(t);
  }
  float* dst = ab + image * 2 * hw + pixel;
  dst[0] = (f[0] - f[1]) * 500.0f;
  dst[hw] = (f[1] - f[2]) * 200.0f;
}

// Annealed mean of ab-bin logits (n, bins, hw): softmax(logits * inv_t) weighted bin centres.
CRT_FN void decode_bins_at(i64 i, const float* logits, int bins, const float* centers, float inv_t,
                           float* ab, i64 hw) {
  const i64 image = i / hw;
  const i64 pixel = i % hw;
  const float* z = logits + image * bins * hw + pixel;
  float peak = z[0] * inv_t;
  for (int k = 1; k < bins; ++k) peak = fmaxf(peak, z[k * hw] * inv_t);
  float total = 0.0f, a = 0.0f, b = 0.0f;
  for (int k = 0; k < bins; ++k) {
    const float e = expf(z[k * hw] * inv_t - peak);
    total += e;
    a += e * centers[2 * k];
    b += e * centers[2 * k + 1];
  }
  float* dst = ab + image * 2 * hw + pixel;
  dst[0] = a / total;
  dst[hw] = b / total;
}

CRT_KERNEL(rgb_to_ab,
           (const float* y, float scale, float offset, const float* t_from_rgb, float* ab, i64 hw,
            i64 count),
           count, rgb_to_ab_at(i, y, scale, offset, t_from_rgb, ab, hw))
CRT_KERNEL(decode_bins,
           (const float* logits, int bins, const float* centers, float inv_t, float* ab, i64 hw,
            i64 count),
           count, decode_bins_at(i, logits, bins, centers, inv_t, ab, hw))

// ------------------------------------------------------------------ merge (pipeline.merge)

// Full-resolution pixel of image n: ab resized from (ab_h, ab_w) with the taps of each axis
// (then * ab_scale + ab_offset), joined with L, Lab -> linear RGB -> uint8 sRGB (HWC).
CRT_FN void merge_at(i64 i, const float* lum, int height, int width, const float* ab, int ab_h,
                     int ab_w, float ab_scale, float ab_offset, int taps_y, const int* index_y,
                     const float* weight_y, int taps_x, const int* index_x, const float* weight_x,
                     const float* rgb_from_t, const unsigned char* code_base,
                     const float* code_threshold, int cells, unsigned char* out) {
  const i64 area = (i64)height * width;
  const i64 image = i / area;
  const i64 y = (i % area) / width;
  const i64 x = i % width;
  const i64 ab_area = (i64)ab_h * ab_w;
  const float* a_plane = ab + image * 2 * ab_area;
  const float* b_plane = a_plane + ab_area;
  float a = 0.0f, b = 0.0f;
  for (int ky = 0; ky < taps_y; ++ky) {
    const i64 row = (i64)index_y[y * taps_y + ky] * ab_w;
    float row_a = 0.0f, row_b = 0.0f;
    for (int kx = 0; kx < taps_x; ++kx) {
      const int column = index_x[x * taps_x + kx];
      const float w = weight_x[x * taps_x + kx];
      row_a += a_plane[row + column] * w;
      row_b += b_plane[row + column] * w;
    }
    const float w = weight_y[y * taps_y + ky];
    a += row_a * w;
    b += row_b * w;
  }
  a = a * ab_scale + ab_offset;
  b = b * ab_scale + ab_offset;
  const float fy = (lum[i] + 16.0f) / 116.0f;
  float f[3];
  f[0] = lab_f_inverse(a / 500.0f + fy);
  f[1] = lab_f_inverse(fy);
  f[2] = lab_f_inverse(fmaxf(b / -200.0f + fy, 0.0f));  // as skimage: a negative Z is set to 0
  unsigned char* dst = out + i * 3;
  for (int r = 0; r < 3; ++r) {
    const float* m = rgb_from_t + 3 * r;
    float lin = f[0] * m[0];
    lin += f[1] * m[1];
    lin += f[2] * m[2];
    dst[r] = linear_to_u8(lin, code_base, code_threshold, cells);
  }
}

CRT_KERNEL(merge_u8,
           (const float* lum, int height, int width, const float* ab, int ab_h, int ab_w,
            float ab_scale, float ab_offset, int taps_y, const int* index_y, const float* weight_y,
            int taps_x, const int* index_x, const float* weight_x, const float* rgb_from_t,
            const unsigned char* code_base, const float* code_threshold, int cells,
            unsigned char* out, i64 count),
           count,
           merge_at(i, lum, height, width, ab, ab_h, ab_w, ab_scale, ab_offset, taps_y, index_y,
                    weight_y, taps_x, index_x, weight_x, rgb_from_t, code_base, code_threshold, cells,
                    out))
