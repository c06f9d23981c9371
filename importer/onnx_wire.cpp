#include "importer/onnx_wire.h"

namespace convoy {
namespace {

constexpr uint64_t kModelGraph = kModelGraphField, kGraphInitializer = kGraphInitializerField,
                   kTensorRawData = kTensorRawDataField;
enum Level { kModel, kGraph, kTensor };

bool read_varint(const uint8_t*& p, const uint8_t* end, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p >= end) return false;
    const uint8_t b = *p++;
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

bool copy_message(const uint8_t* base, const uint8_t* p, const uint8_t* end, Level level, std::string& out,
                  std::vector<RawDataRef>& refs) {
  while (p < end) {
    const uint8_t* field_start = p;
    uint64_t key = 0;
    if (!read_varint(p, end, &key)) return false;
    const uint64_t field = key >> 3, wire = key & 7;
    switch (wire) {
      case 0: {  // varint
        uint64_t v;
        if (!read_varint(p, end, &v)) return false;
        out.append(reinterpret_cast<const char*>(field_start), static_cast<size_t>(p - field_start));
        break;
      }
      case 1:  // fixed64
      case 5: {  // fixed32
        const size_t n = wire == 1 ? 8 : 4;
        if (static_cast<size_t>(end - p) < n) return false;
        p += n;
        out.append(reinterpret_cast<const char*>(field_start), static_cast<size_t>(p - field_start));
        break;
      }
      case 2: {  // length-delimited
        uint64_t len;
        if (!read_varint(p, end, &len) || len > static_cast<uint64_t>(end - p)) return false;
        const uint8_t* body = p;
        p += len;
        const bool nested = (level == kModel && field == kModelGraph) || (level == kGraph && field == kGraphInitializer);
        if (level == kTensor && field == kTensorRawData) {
          refs.back() = {true, static_cast<uint64_t>(body - base), len};
        } else if (nested) {
          if (level == kGraph) refs.emplace_back();
          std::string inner;
          if (!copy_message(base, body, p, level == kModel ? kGraph : kTensor, inner, refs)) return false;
          write_varint(out, key);
          write_varint(out, inner.size());
          out += inner;
        } else {
          out.append(reinterpret_cast<const char*>(field_start), static_cast<size_t>(p - field_start));
        }
        break;
      }
      default:
        return false;  // groups (3/4) are not used by ONNX
    }
  }
  return true;
}

}  // namespace

void write_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void write_length_prefix(std::string& out, uint64_t field, uint64_t length) {
  write_varint(out, (field << 3) | 2);
  write_varint(out, length);
}

bool strip_initializer_raw_data(const uint8_t* data, size_t size, std::string* out, std::vector<RawDataRef>* refs) {
  out->clear();
  refs->clear();
  return copy_message(data, data, data + size, kModel, *out, *refs);
}

}  // namespace convoy
