// PNG row unfiltering (the five filter types of the PNG specification, section 9.2) for mdrn_fast/png16.py,
// which decodes the 16-bit colour PNGs that Pillow only reads as 8-bit. Sequential by nature (each byte
// depends on the one bpp before it), hence C++ rather than NumPy.
#include <cstdlib>

#include "common.h"

namespace mdrn_fast {

// raw: [H, 1 + stride] uint8, each row a filter type byte then the filtered bytes; returns [H, stride].
at::Tensor png_unfilter(const at::Tensor& raw_in, int64_t bpp) {
  TORCH_CHECK(raw_in.scalar_type() == at::kByte && raw_in.dim() == 2 && raw_in.size(1) >= 1 && raw_in.is_cpu(),
              "raw: expected a [H, 1 + stride] uint8 CPU tensor, got ", raw_in.scalar_type(), " ", raw_in.sizes());
  TORCH_CHECK(bpp >= 1 && bpp <= 8, "bpp: expected 1 to 8 bytes per pixel, got ", bpp);
  const at::Tensor raw = raw_in.contiguous();
  const int64_t H = raw.size(0), stride = raw.size(1) - 1;
  at::Tensor out = at::empty({H, stride}, raw.options());
  const uint8_t* in = raw.const_data_ptr<uint8_t>();
  uint8_t* o = out.mutable_data_ptr<uint8_t>();
  for (int64_t y = 0; y < H; ++y) {
    const uint8_t filter = in[y * (stride + 1)];
    const uint8_t* f = in + y * (stride + 1) + 1;
    uint8_t* cur = o + y * stride;
    const uint8_t* prev = y ? cur - stride : nullptr;  // the row above, already unfiltered (none for row 0)
    for (int64_t i = 0; i < stride; ++i) {
      const int a = i >= bpp ? cur[i - bpp] : 0, b = prev ? prev[i] : 0, c = (prev && i >= bpp) ? prev[i - bpp] : 0;
      int pred = 0;
      switch (filter) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default: TORCH_CHECK(false, "png: row ", y, " has filter type ", int(filter), " (0 to 4 are defined)");
      }
      cur[i] = static_cast<uint8_t>(f[i] + pred);
    }
  }
  return out;
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) { m.def("png_unfilter(Tensor raw, int bpp) -> Tensor"); }

TORCH_LIBRARY_IMPL(mdrn_fast, CPU, m) { m.impl("png_unfilter", &png_unfilter); }

}  // namespace mdrn_fast
