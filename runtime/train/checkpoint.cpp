// Training checkpoint, little-endian binary:
//   "CVYTRAIN" | u32 version | u64 fingerprint | u64 steps | f32 lr | u32 param count |
//   per param (in Trainer::trainable() order): u32 name length, name, u32 rank, i64 dims,
//   f32 values[numel], f32 velocity[numel] | u64 extra length, extra bytes |
//   u64 FNV-1a 64 of everything before it.
// The fingerprint hashes the parameter names and shapes: a checkpoint loads only into a Trainer
// of the same model and options. Written to path + ".tmp" then renamed (atomic).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "runtime/error.h"
#include "runtime/train/train_internal.h"

namespace convoy::train {

namespace {

constexpr char kMagic[8] = {'C', 'V', 'Y', 'T', 'R', 'A', 'I', 'N'};
constexpr uint32_t kVersion = 1;

uint64_t fnv1a(const char* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

template <typename T>
void put(std::string& s, const T& v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

uint64_t fingerprint(const SplitModel& m) {
  std::string s;
  for (const auto& p : m.params) {
    s += p->name;
    s.push_back('\0');
    for (int64_t d : p->value->shape) put(s, d);
    s.push_back('\0');
  }
  return fnv1a(s.data(), s.size());
}

class Reader {
 public:
  Reader(const std::string& data, size_t end, const std::string& path) : d_(data), end_(end), path_(path) {}
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  const char* take(size_t n) {
    if (n > end_ - pos_) fail(str_cat(path_, ": checkpoint is truncated or corrupt"));
    const char* p = d_.data() + pos_;
    pos_ += n;
    return p;
  }
  size_t pos() const { return pos_; }

 private:
  const std::string& d_;
  size_t end_, pos_ = 0;
  const std::string& path_;
};

}  // namespace

void save_checkpoint_impl(const SplitModel& m, uint64_t steps, float lr, const std::string& path, const std::string& extra) {
  std::string s(kMagic, sizeof(kMagic));
  put(s, kVersion);
  put(s, fingerprint(m));
  put(s, steps);
  put(s, lr);
  put(s, static_cast<uint32_t>(m.params.size()));
  for (const auto& p : m.params) {
    put(s, static_cast<uint32_t>(p->name.size()));
    s += p->name;
    put(s, static_cast<uint32_t>(p->value->shape.size()));
    for (int64_t d : p->value->shape) put(s, d);
    s.append(reinterpret_cast<const char*>(p->data()), p->numel() * sizeof(float));
    s.append(reinterpret_cast<const char*>(p->velocity.data()), p->velocity.size() * sizeof(float));
  }
  put(s, static_cast<uint64_t>(extra.size()));
  s += extra;
  put(s, fnv1a(s.data(), s.size()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(str_cat(path, ": cannot write checkpoint (", tmp, " could not be created)"));
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
    f.flush();
    if (!f) {
      f.close();
      std::remove(tmp.c_str());
      fail(str_cat(path, ": cannot write checkpoint (write failed)"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(str_cat(path, ": cannot write checkpoint (rename failed)"));
  }
}

std::string load_checkpoint_impl(SplitModel& m, uint64_t* steps, float* lr, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(str_cat(path, ": cannot open checkpoint"));
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (data.size() < sizeof(kMagic) + 4 + 8 || std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0)
    fail(str_cat(path, ": not a convoy training checkpoint"));
  uint64_t sum = 0;
  std::memcpy(&sum, data.data() + data.size() - 8, 8);
  if (fnv1a(data.data(), data.size() - 8) != sum) fail(str_cat(path, ": checkpoint is truncated or corrupt (bad checksum)"));
  Reader r(data, data.size() - 8, path);
  r.take(sizeof(kMagic));
  const uint32_t version = r.get<uint32_t>();
  if (version != kVersion) fail(str_cat(path, ": checkpoint version ", version, " is not supported (expected ", kVersion, ")"));
  if (r.get<uint64_t>() != fingerprint(m))
    fail(str_cat(path, ": checkpoint belongs to another model or other trainable layers"));
  const uint64_t st = r.get<uint64_t>();
  const float l = r.get<float>();
  const uint32_t count = r.get<uint32_t>();
  if (count != m.params.size()) fail(str_cat(path, ": checkpoint has ", count, " parameters, expected ", m.params.size()));
  // Parse everything before changing anything: a bad file leaves the trainer as it was.
  std::vector<std::pair<const char*, const char*>> blobs;
  for (const auto& p : m.params) {
    const uint32_t len = r.get<uint32_t>();
    const std::string name(r.take(len), len);
    const uint32_t rank = r.get<uint32_t>();
    Shape shape;
    for (uint32_t i = 0; i < rank && i < 16; ++i) shape.push_back(r.get<int64_t>());
    if (name != p->name || shape != p->value->shape)
      fail(str_cat(path, ": checkpoint parameter '", name, "' does not match '", p->name, "'"));
    const size_t bytes = p->numel() * sizeof(float);
    const char* v = r.take(bytes);
    const char* vel = r.take(bytes);
    blobs.emplace_back(v, vel);
  }
  const uint64_t extra_len = r.get<uint64_t>();
  const std::string extra(r.take(static_cast<size_t>(extra_len)), static_cast<size_t>(extra_len));
  if (r.pos() != data.size() - 8) fail(str_cat(path, ": checkpoint has trailing bytes"));
  for (size_t i = 0; i < m.params.size(); ++i) {
    Param& p = *m.params[i];
    std::memcpy(p.data(), blobs[i].first, p.numel() * sizeof(float));
    std::memcpy(p.velocity.data(), blobs[i].second, p.numel() * sizeof(float));
    ++p.version;
  }
  *steps = st;
  *lr = l;
  return extra;
}

}  // namespace convoy::train
