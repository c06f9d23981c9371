// convoy finetune: fine-tune the last layers of an ONNX classifier on a folder of images
// (convoy::train::Trainer) and export the best epoch's model as a new ONNX file.
//
// The loop: per epoch a seeded shuffle of the training images, batches decoded and augmented
// on a background thread one batch ahead (tools/train_data.h), one SGD step per batch, then an
// evaluation pass over the validation images; the best epoch (val accuracy, ties: lower val
// loss) is exported to --out, and a checkpoint with this loop's state is written after every
// epoch so that --resume continues bit-identically.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>

#include "convoy/train.hpp"
#include "tools/cli_common.h"
#include "tools/image_input.h"
#include "tools/npy.h"  // shape_string
#include "tools/atomic_file.h"
#include "tools/train_data.h"

namespace convoy::cli {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

constexpr FlagSpec kFlags[] = {
    {"--out", true},        {"--epochs", true},       {"--train-last", true}, {"--train", true},     {"--classes", true},
    {"--head-init", true},  {"--lr", true},           {"--lr-step", true},    {"--lr-plateau", true}, {"--momentum", true},
    {"--weight-decay", true}, {"--batch", true},      {"--val", true},        {"--val-dir", true},   {"--augment", true},
    {"--seed", true},       {"--threads", true},      {"--resume", true},     {"--checkpoint", true}, {"--log", true},
    {"--plot", true},       {"--size", true},         {"--mean", true},       {"--std", true},       {"--scale", true},
    {"--bgr", false},
};

struct FinetuneArgs {
  std::string model, data_dir, out, checkpoint;
  std::optional<std::string> val_dir, resume, log, plot;
  int epochs = 3;
  int64_t classes = 0;  // 0: auto
  double val = 0.1;
  bool augment = true;
  int64_t batch = 32;
  int lr_step = 0;  // 0: plateau schedule
  double lr_gamma = 0.1;
  int lr_plateau = 2;
  std::optional<HxW> size;
  PreprocessFlags pre;
  train::TrainOptions opt;
};

std::vector<std::string> split_names(const std::string& flag, const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  if (out.empty()) throw UsageError("option '" + flag + "': no node name in '" + text + "'");
  return out;
}

FinetuneArgs parse_finetune_args(const std::vector<std::string>& argv) {
  const ParsedArgs a = parse_args(argv, kFlags);
  FinetuneArgs r;
  if (a.positional.empty()) throw UsageError("missing MODEL");
  if (a.positional.size() < 2) throw UsageError("missing DATA_DIR");
  if (a.positional.size() > 2) throw UsageError("unexpected argument '" + a.positional[2] + "'");
  r.model = a.positional[0];
  r.data_dir = a.positional[1];
  auto out = a.get("--out");
  if (!out || out->empty()) throw UsageError("missing --out NEW.onnx");
  r.out = *out;
  r.checkpoint = a.get("--checkpoint").value_or(r.out + ".ckpt");
  if (r.checkpoint == r.out) throw UsageError("--checkpoint must differ from --out");
  r.val_dir = a.get("--val-dir");
  r.resume = a.get("--resume");
  r.log = a.get("--log");
  r.plot = a.get("--plot");
  if (auto v = a.get("--epochs")) r.epochs = int(parse_int_flag("--epochs", *v, 1, 100000));
  if (a.has("--train-last") && a.has("--train")) throw UsageError("give --train-last or --train, not both");
  if (auto v = a.get("--train-last")) r.opt.train_last = int(parse_int_flag("--train-last", *v, 1, 100000));
  if (auto v = a.get("--train")) r.opt.train_nodes = split_names("--train", *v);
  if (auto v = a.get("--classes"); v && *v != "auto") r.classes = parse_int_flag("--classes", *v, 2, 1 << 20);
  if (auto v = a.get("--head-init")) {
    if (*v == "normal") {
      r.opt.head_init = train::TrainOptions::HeadInit::kNormal;
    } else if (*v == "kaiming") {
      r.opt.head_init = train::TrainOptions::HeadInit::kKaiming;
    } else {
      throw UsageError("option '--head-init': '" + *v + "' is not normal or kaiming");
    }
  }
  if (auto v = a.get("--lr")) {
    r.opt.lr = parse_float_flag("--lr", *v);
    if (!(r.opt.lr > 0)) throw UsageError("option '--lr': " + *v + " is not positive");
  }
  if (a.has("--lr-step") && a.has("--lr-plateau")) throw UsageError("give --lr-step or --lr-plateau, not both");
  if (auto v = a.get("--lr-step")) {
    const size_t colon = v->find(':');
    r.lr_step = int(parse_int_flag("--lr-step", v->substr(0, colon), 1, 100000));
    if (colon != std::string::npos) {
      r.lr_gamma = parse_float_flag("--lr-step", v->substr(colon + 1));
      if (!(r.lr_gamma > 0) || r.lr_gamma > 1) throw UsageError("option '--lr-step': the factor must be in (0, 1]");
    }
  }
  if (auto v = a.get("--lr-plateau")) r.lr_plateau = int(parse_int_flag("--lr-plateau", *v, 1, 100000));
  if (auto v = a.get("--momentum")) {
    r.opt.momentum = parse_float_flag("--momentum", *v);
    if (r.opt.momentum < 0 || r.opt.momentum >= 1) throw UsageError("option '--momentum': " + *v + " is not in [0, 1)");
  }
  if (auto v = a.get("--weight-decay")) {
    r.opt.weight_decay = parse_float_flag("--weight-decay", *v);
    if (r.opt.weight_decay < 0) throw UsageError("option '--weight-decay': " + *v + " is negative");
  }
  if (auto v = a.get("--batch")) r.batch = parse_int_flag("--batch", *v, 1, 65536);
  if (a.has("--val") && r.val_dir) throw UsageError("give --val or --val-dir, not both");
  if (auto v = a.get("--val")) {
    r.val = parse_float_flag("--val", *v);
    if (r.val < 0 || r.val > 0.9) throw UsageError("option '--val': " + *v + " is not in [0, 0.9]");
  }
  if (auto v = a.get("--augment")) {
    if (*v != "on" && *v != "off") throw UsageError("option '--augment': '" + *v + "' is not on or off");
    r.augment = *v == "on";
  }
  if (auto v = a.get("--seed")) r.opt.seed = uint64_t(parse_int_flag("--seed", *v, 0, std::numeric_limits<int64_t>::max()));
  if (auto v = a.get("--threads")) r.opt.threads = int(parse_int_flag("--threads", *v, 0, 4096));
  r.size = parse_size_flag(a);
  r.pre = parse_preprocess_flags(a);
  return r;
}

// ---- loop state, kept in the checkpoint's `extra` bytes ----

struct EpochRow {
  int epoch = 0;
  double train_loss = 0, train_acc = 0, val_loss = kNaN, val_acc = kNaN, lr = 0, images_per_s = 0, seconds = 0;
};

struct LoopState {
  int epochs_done = 0;
  int best_epoch = 0;
  double best_acc = -1, best_loss = INFINITY;
  double plateau_best = INFINITY;  // lowest monitored loss so far
  int plateau_bad = 0;             // epochs since it last improved
  double lr = 0;                   // learning rate of the next epoch
  std::vector<EpochRow> history;
};

// What a resumed run must share with the run that wrote the checkpoint.
struct RunIdentity {
  std::string data_dir, val, schedule, classes;
  uint64_t seed = 0;
  int64_t batch = 0;
  bool augment = true;
};

constexpr const char* kStateMagic = "convoy-finetune-state 1";

std::string fmt(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string serialize(const LoopState& s, const RunIdentity& id) {
  std::ostringstream o;
  o << kStateMagic << "\n";
  o << "data_dir=" << id.data_dir << "\nval=" << id.val << "\nschedule=" << id.schedule << "\nseed=" << id.seed
    << "\nbatch=" << id.batch << "\naugment=" << (id.augment ? "on" : "off") << "\nclasses=" << id.classes << "\n";
  o << "epochs_done=" << s.epochs_done << "\nbest_epoch=" << s.best_epoch << "\nbest_acc=" << fmt(s.best_acc)
    << "\nbest_loss=" << fmt(s.best_loss) << "\nplateau_best=" << fmt(s.plateau_best) << "\nplateau_bad=" << s.plateau_bad
    << "\nlr=" << fmt(s.lr) << "\n";
  for (const EpochRow& h : s.history)
    o << "history=" << h.epoch << "," << fmt(h.train_loss) << "," << fmt(h.train_acc) << "," << fmt(h.val_loss) << ","
      << fmt(h.val_acc) << "," << fmt(h.lr) << "," << fmt(h.images_per_s) << "," << fmt(h.seconds) << "\n";
  return o.str();
}

// Class names may hold any character but '/' and NUL (they are file or folder names); '\n' is
// escaped so the state stays one key per line.
std::string join_classes(const std::vector<std::string>& classes) {
  std::string s;
  for (const auto& c : classes) {
    if (!s.empty()) s += '/';
    for (char ch : c) s += ch == '\n' ? std::string("\\n") : ch == '\\' ? std::string("\\\\") : std::string(1, ch);
  }
  return s;
}

LoopState parse_state(const std::string& blob, const std::string& ckpt, const RunIdentity& want) {
  auto bad = [&](const std::string& why) {
    return convoy::Error(ckpt + ": not a checkpoint of convoy finetune (" + why + ")");
  };
  std::istringstream in(blob);
  std::string line;
  if (!std::getline(in, line) || line != kStateMagic) throw bad("no loop state");
  std::map<std::string, std::string> kv;
  LoopState s;
  auto num = [&](const std::string& key, const std::string& text) {
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);  // reads what fmt() wrote, inf and nan included
    if (text.empty() || *end) throw bad("bad value of " + key);
    return d;
  };
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) throw bad("malformed line");
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "history") {
      std::vector<double> f;
      std::stringstream ss(value);
      std::string item;
      while (std::getline(ss, item, ',')) f.push_back(num(key, item));
      if (f.size() != 8) throw bad("malformed history");
      s.history.push_back({int(f[0]), f[1], f[2], f[3], f[4], f[5], f[6], f[7]});
    } else {
      kv[key] = value;
    }
  }
  auto get = [&](const std::string& key) {
    auto it = kv.find(key);
    if (it == kv.end()) throw bad("no " + key);
    return it->second;
  };
  auto must_match = [&](const std::string& key, const std::string& have, const std::string& what) {
    if (get(key) != have)
      throw convoy::Error(ckpt + ": the checkpoint was written with " + what + " '" + get(key) + "', this run has '" + have +
                          "'; resume with the same settings");
  };
  must_match("data_dir", want.data_dir, "data directory");
  must_match("val", want.val, "validation");
  must_match("schedule", want.schedule, "learning rate and schedule");
  must_match("seed", std::to_string(want.seed), "--seed");
  must_match("batch", std::to_string(want.batch), "--batch");
  must_match("augment", want.augment ? "on" : "off", "--augment");
  must_match("classes", want.classes, "classes");
  s.epochs_done = int(num("epochs_done", get("epochs_done")));
  s.best_epoch = int(num("best_epoch", get("best_epoch")));
  s.best_acc = num("best_acc", get("best_acc"));
  s.best_loss = num("best_loss", get("best_loss"));
  s.plateau_best = num("plateau_best", get("plateau_best"));
  s.plateau_bad = int(num("plateau_bad", get("plateau_bad")));
  s.lr = num("lr", get("lr"));
  if (s.epochs_done < 0 || size_t(s.epochs_done) != s.history.size() || !(s.lr > 0)) throw bad("inconsistent loop state");
  return s;
}

// ---- output files ----

void write_csv(const std::string& path, const std::vector<EpochRow>& history) {
  std::string s = "epoch,train_loss,train_acc,val_loss,val_acc,lr,images_per_s,seconds\n";
  char buf[256];
  for (const EpochRow& h : history) {
    std::snprintf(buf, sizeof buf, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.1f,%.2f\n", h.epoch, h.train_loss, h.train_acc, h.val_loss,
                  h.val_acc, h.lr, h.images_per_s, h.seconds);
    s += buf;
  }
  write_file_atomic(path, s);
}

void write_plot(const std::string& path, const std::vector<EpochRow>& history) {
  std::vector<CurvePoint> pts;
  for (const EpochRow& h : history) pts.push_back({h.epoch, h.train_loss, h.train_acc, h.val_loss, h.val_acc});
  write_file_atomic(path, plot_curves_png(pts));
}

std::string float_list(const std::vector<float>& v) {
  std::string s;
  char buf[32];
  for (float f : v) {
    for (int digits = 6; digits <= 9; ++digits) {  // the shortest text that reads back as f
      std::snprintf(buf, sizeof buf, "%.*g", digits, double(f));
      if (std::strtof(buf, nullptr) == f) break;
    }
    s += (s.empty() ? "" : ",") + std::string(buf);
  }
  return s;
}

// Metadata of the exported model: the class names, and the preprocessing flags this run used
// (so that `convoy run NEW.onnx` preprocesses as training did); other keys stay as they were.
std::map<std::string, std::string> export_metadata(const FinetuneArgs& r, const std::vector<std::string>& classes,
                                                   const Preprocess& p) {
  std::map<std::string, std::string> m;
  std::string labels;
  for (const auto& c : classes) labels += c + "\n";
  labels.pop_back();
  m["convoy.labels"] = labels;
  if (r.size) m["convoy.input_size"] = std::to_string(p.height) + "x" + std::to_string(p.width);
  if (r.pre.mean) m["convoy.mean"] = float_list(p.mean);
  if (r.pre.std) m["convoy.std"] = float_list(p.std);
  if (r.pre.scale) m["convoy.scale"] = float_list({p.scale});
  if (r.pre.bgr) m["convoy.color"] = "bgr";
  return m;
}

// ---- progress on stderr ----

// Progress goes to a duplicate of fd 2: image decoding briefly redirects fd 2 itself to catch
// the decoders' messages (tools/image_input.cpp), and it runs on the loader thread.
class Progress {
 public:
  Progress() {
    const int fd = ::dup(2);
    out_ = fd >= 0 ? ::fdopen(fd, "w") : nullptr;
    if (!out_) out_ = stderr;
    tty_ = ::isatty(2) != 0;
  }
  ~Progress() {
    if (out_ != stderr) std::fclose(out_);
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void line(const std::string& s) {
    clear_bar();
    std::fprintf(out_, "%s\n", s.c_str());
    std::fflush(out_);
  }
  void start_epoch() { last_decile_ = 0; }
  // A bar: redrawn with \r on a terminal, else one line per 10% of the epoch.
  void bar(int epoch, int epochs, size_t done, size_t total, double images_per_s, double loss) {
    const size_t decile = total ? done * 10 / total : 10;
    if (!tty_ && decile <= last_decile_) return;
    // A terminal is redrawn at most 10 times a second, and at the end of the epoch.
    const auto now = std::chrono::steady_clock::now();
    if (tty_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    last_decile_ = decile;
    char buf[200];
    std::string hashes(decile, '#');
    hashes.resize(10, '.');
    std::snprintf(buf, sizeof buf, "epoch %d/%d [%s] %zu/%zu images, %.1f images/s, loss %.4f", epoch, epochs, hashes.c_str(),
                  done, total, images_per_s, loss);
    if (tty_) {
      std::fprintf(out_, "\r%s\033[K", buf);
      drawn_ = true;
    } else {
      std::fprintf(out_, "%s\n", buf);
    }
    std::fflush(out_);
  }

 private:
  void clear_bar() {
    if (drawn_) std::fprintf(out_, "\r\033[K");
    drawn_ = false;
  }
  FILE* out_ = nullptr;
  bool tty_ = false, drawn_ = false;
  size_t last_decile_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

std::string fixed(double v, int digits) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string short_num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

int finetune_main(const std::vector<std::string>& argv) {
  FinetuneArgs r = parse_finetune_args(argv);
  using Clock = std::chrono::steady_clock;

  // Everything that can fail before training, in the order a user would fix it.
  auto model = convoy::Model::load(r.model);
  const std::string name = model_name(*model);
  if (model->inputs().size() != 1)
    throw convoy::Error(name + ": the model has " + std::to_string(model->inputs().size()) +
                        " inputs; convoy finetune trains single-input image classifiers");
  Dataset data = discover_dataset(r.data_dir);
  const std::vector<std::string>& classes = data.classes;
  std::string class_list;
  for (const auto& c : classes) class_list += (class_list.empty() ? "" : ", ") + c;
  if (r.classes && size_t(r.classes) != classes.size())
    throw convoy::Error(r.data_dir + ": --classes " + std::to_string(r.classes) + " but the data has " +
                        std::to_string(classes.size()) + " classes (" + class_list + ")");
  Split split;
  if (r.val_dir) {
    Dataset v = discover_dataset(*r.val_dir, 1);
    relabel_dataset(v, classes);
    split.train = data.samples;
    split.val = v.samples;
  } else {
    split = stratified_split(data.samples, classes.size(), r.val, r.opt.seed);
  }
  {
    std::error_code ec;
    const fs::path parent = fs::absolute(r.out).parent_path();
    if (!fs::is_directory(parent, ec)) throw convoy::Error(r.out + ": its directory does not exist");
  }

  // The Trainer loads its own copy of the model: keep only what the preprocessing needs of this
  // one, so that the weights are not held twice (last layer, batch 8: AlexNet peak RSS 551 -> 335 MB,
  // VGG-16 1.39 GB -> 875 MB with the streamed export).
  const ModelHeader header(*model);
  model.reset();

  r.opt.num_classes = int(classes.size());
  train::Trainer trainer(r.model, r.opt);
  const std::vector<int64_t> chw = trainer.input_shape();
  if (chw.size() != 3)
    throw convoy::Error(name + ": the trainer reports an input of " + std::to_string(chw.size()) + " dims; images need [C, H, W]");
  std::vector<int64_t> nchw = {1, chw[0], chw[1], chw[2]};
  if (r.size) {
    // The Trainer fixes the input size when it loads the model; --size may only confirm it.
    const std::vector<int64_t> want = concrete_input_shape(header, header.inputs()[0], 1, r.size);
    if (want != nchw)
      throw convoy::Error(name + ": the trainer runs the model at " + shape_string(nchw) + "; --size " +
                          std::to_string(r.size->height) + "x" + std::to_string(r.size->width) + " does not fit it");
  }
  const Preprocess pre = make_preprocess(header, nchw, r.pre);

  RunIdentity id;
  id.data_dir = fs::weakly_canonical(fs::absolute(data.root)).string();
  id.val = r.val_dir ? "dir " + fs::weakly_canonical(fs::absolute(*r.val_dir)).string() : fmt(r.val);
  id.schedule = "lr " + short_num(r.opt.lr) + ", " +
                (r.lr_step ? "step " + std::to_string(r.lr_step) + ":" + short_num(r.lr_gamma) : "plateau " + std::to_string(r.lr_plateau));
  id.seed = r.opt.seed;
  id.batch = r.batch;
  id.augment = r.augment;
  id.classes = join_classes(classes);

  LoopState state;
  state.lr = r.opt.lr;
  if (r.resume) state = parse_state(trainer.load_checkpoint(*r.resume), *r.resume, id);

  Progress progress;
  {
    std::string layers;
    for (const auto& p : trainer.trainable())
      if (layers.find("'" + p.node + "'") == std::string::npos) layers += (layers.empty() ? "'" : ", '") + p.node + "'";
    progress.line("finetune: " + std::to_string(classes.size()) + " classes (" + class_list + "), " +
                  std::to_string(split.train.size()) + " training / " + std::to_string(split.val.size()) +
                  " validation images from " + data.root + " (" +
                  (data.layout == DatasetLayout::kKaggle ? "kaggle" : "folder") + " layout); input " + shape_string(nchw) +
                  "; training " + layers);
    if (r.resume) progress.line("resumed from " + *r.resume + " after epoch " + std::to_string(state.epochs_done));
  }
  if (split.train.empty()) throw convoy::Error(data.root + ": no training images left after the validation split");

  if (state.epochs_done >= r.epochs)
    progress.line("the checkpoint already holds " + std::to_string(state.epochs_done) + " epochs; nothing to train");
  const AugmentOptions aug;
  const auto batch = size_t(r.batch);
  const bool has_val = !split.val.empty();
  const auto metadata = export_metadata(r, classes, pre);

  for (int epoch = state.epochs_done + 1; epoch <= r.epochs; ++epoch) {
    const auto t0 = Clock::now();
    trainer.set_lr(float(state.lr));
    const std::vector<size_t> order = epoch_permutation(split.train.size(), r.opt.seed, uint64_t(epoch));
    std::vector<BatchRequest> jobs;  // the training batches, then the validation batches
    for (size_t b = 0; b < split.train.size(); b += batch)
      jobs.push_back({&split.train, &order, b, std::min(b + batch, split.train.size()), r.augment, r.opt.seed, uint64_t(epoch)});
    const size_t train_jobs = jobs.size();
    for (size_t b = 0; b < split.val.size(); b += batch)
      jobs.push_back({&split.val, nullptr, b, std::min(b + batch, split.val.size()), false, r.opt.seed, uint64_t(epoch)});

    // After `jobs` and `order`: destroyed first, it waits for a batch still loading from them.
    BatchPrefetcher loader(pre, aug);

    double train_loss = 0, val_loss = 0;
    size_t train_correct = 0, train_count = 0, val_correct = 0, val_count = 0, skipped = 0, done = 0;
    std::string first_failure;
    double train_seconds = 0;
    progress.start_epoch();
    for (size_t j = 0; j < jobs.size(); ++j) {
      Batch b = loader.next(jobs[j]);
      if (j + 1 < jobs.size()) loader.prefetch(jobs[j + 1]);
      if (b.skipped && first_failure.empty()) first_failure = b.first_failure;
      skipped += b.skipped;
      if (j < train_jobs) {
        done += jobs[j].end - jobs[j].begin;
        if (b.count) {
          const train::StepResult s = trainer.train_step(b.images.data(), b.labels.data(), b.count);
          train_loss += s.loss * double(s.count);
          train_correct += s.correct;
          train_count += s.count;
        }
        train_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        progress.bar(epoch, r.epochs, done, split.train.size(), double(done) / std::max(train_seconds, 1e-9),
                     train_count ? train_loss / double(train_count) : kNaN);
      } else if (b.count) {
        const train::StepResult s = trainer.evaluate(b.images.data(), b.labels.data(), b.count);
        val_loss += s.loss * double(s.count);
        val_correct += s.correct;
        val_count += s.count;
      }
    }
    if (train_count == 0) throw convoy::Error(data.root + ": no training image could be decoded (first: " + first_failure + ")");
    if (skipped)
      progress.line("epoch " + std::to_string(epoch) + ": skipped " + std::to_string(skipped) + " unreadable file" +
                    (skipped == 1 ? "" : "s") + " (first: " + first_failure + ")");

    EpochRow row;
    row.epoch = epoch;
    row.train_loss = train_loss / double(train_count);
    row.train_acc = double(train_correct) / double(train_count);
    if (val_count) {
      row.val_loss = val_loss / double(val_count);
      row.val_acc = double(val_correct) / double(val_count);
    }
    row.lr = state.lr;
    row.images_per_s = double(split.train.size()) / std::max(train_seconds, 1e-9);

    // Best epoch: higher val accuracy, ties to lower val loss; without validation, the last one.
    const bool improved = !has_val || !val_count ||
                          row.val_acc > state.best_acc || (row.val_acc == state.best_acc && row.val_loss < state.best_loss);
    if (improved) {
      trainer.export_onnx(r.out, metadata);
      state.best_epoch = epoch;
      state.best_acc = val_count ? row.val_acc : row.train_acc;
      state.best_loss = val_count ? row.val_loss : row.train_loss;
    }
    // Learning-rate schedule for the next epoch.
    if (r.lr_step) {
      if (epoch % r.lr_step == 0) state.lr *= r.lr_gamma;
    } else {
      const double monitored = val_count ? row.val_loss : row.train_loss;
      if (monitored < state.plateau_best) {
        state.plateau_best = monitored;
        state.plateau_bad = 0;
      } else if (++state.plateau_bad >= r.lr_plateau) {
        state.lr /= 10;
        state.plateau_bad = 0;
      }
    }
    row.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    state.history.push_back(row);
    state.epochs_done = epoch;
    trainer.save_checkpoint(r.checkpoint, serialize(state, id));
    if (r.log) write_csv(*r.log, state.history);
    if (r.plot) write_plot(*r.plot, state.history);

    progress.line("epoch " + std::to_string(epoch) + "/" + std::to_string(r.epochs) + ": train loss " +
                  fixed(row.train_loss, 4) + " acc " + fixed(row.train_acc, 4) + ", val loss " +
                  (val_count ? fixed(row.val_loss, 4) + " acc " + fixed(row.val_acc, 4) : std::string("- acc -")) + ", lr " +
                  short_num(row.lr) + ", " + fixed(row.seconds, 1) + " s" + (improved ? ", saved " + r.out : ""));
  }

  if (state.best_epoch > 0)
    std::printf("best epoch %d: %s %s, %s %s -> %s\n", state.best_epoch, has_val ? "val acc" : "train acc",
                fixed(state.best_acc, 4).c_str(), has_val ? "val loss" : "train loss", fixed(state.best_loss, 4).c_str(),
                r.out.c_str());
  return 0;
}

}  // namespace

const Command kFinetuneCommand = {
    "finetune",
    "fine-tune the last layers of a classifier on a folder of images",
    "convoy finetune MODEL DATA_DIR --out NEW.onnx [--epochs E] [--train-last N | --train NAME,...]\n"
    "                 [--classes auto|N] [--head-init normal|kaiming] [--lr LR] [--lr-step S[:G] | --lr-plateau P]\n"
    "                 [--momentum M] [--weight-decay W] [--batch B] [--val F | --val-dir DIR] [--augment on|off]\n"
    "                 [--seed S] [--threads N] [--resume CKPT] [--checkpoint PATH] [--log metrics.csv]\n"
    "                 [--plot curves.png] [--size HxW] [--mean a,b,c] [--std a,b,c] [--scale S] [--bgr]",
    "Trains the last layers of MODEL (SGD with momentum, softmax cross-entropy) on the images in\n"
    "DATA_DIR and writes the best epoch's model to NEW.onnx, with the class names as its\n"
    "convoy.labels metadata (so `convoy run NEW.onnx photo.jpg` prints them).\n"
    "\n"
    "DATA_DIR layouts, tried in this order (extensions jpg, jpeg, png, bmp, any case; hidden\n"
    "files ignored):\n"
    "  Kaggle     DATA_DIR/<class>.<anything>.<ext> or DATA_DIR/train/<class>.<anything>.<ext>\n"
    "             (the class is the file name up to its first dot: cat.123.jpg is a 'cat')\n"
    "  folders    DATA_DIR/<class>/**/<image>  (one sub-folder per class)\n"
    "Classes are sorted by name; class i is output i of the new head. Images are preprocessed as\n"
    "`convoy run` does (the model's convoy.* metadata, else ImageNet normalisation; resize and\n"
    "centre crop). Files that fail to decode are skipped and counted once per epoch.\n"
    "\n"
    "  --out FILE          the fine-tuned model (required); replaced atomically whenever the\n"
    "                      validation accuracy improves (ties: lower validation loss)\n"
    "  --epochs E          passes over the training images (default 3)\n"
    "  --train-last N      train the last N layers with weights (Conv/Gemm/MatMul; default 1)\n"
    "  --train NAME,...    train exactly these nodes instead (names as `convoy inspect` shows)\n"
    "  --classes auto|N    auto (default): one output per class found; N: check that N are found\n"
    "                      (a head with another output count is replaced by a new one)\n"
    "  --head-init KIND    a new head's weights: normal (N(0, 0.01), default) or kaiming (uniform)\n"
    "  --lr LR             initial learning rate (default 0.01)\n"
    "  --lr-step S[:G]     multiply the learning rate by G (default 0.1) every S epochs\n"
    "  --lr-plateau P      divide it by 10 after P epochs without a lower validation loss\n"
    "                      (the default schedule, P = 2)\n"
    "  --momentum M        SGD momentum (default 0.9)\n"
    "  --weight-decay W    L2 weight decay (default 5e-4)\n"
    "  --batch B           images per SGD step (default 32)\n"
    "  --val F             fraction of each class held out for validation, seeded (default 0.1;\n"
    "                      0: no validation, the last epoch is kept)\n"
    "  --val-dir DIR       validate on DIR instead (same layouts; its classes must be training classes)\n"
    "  --augment on|off    training-image augmentation (default on; never on validation images):\n"
    "                      horizontal flip (p 0.5), rotation +-10 deg, scale 0.9-1.1, shift +-8%,\n"
    "                      one affine; Gaussian noise sigma 0.02 of the 0..1 pixel range\n"
    "  --seed S            seed of the split, shuffling, augmentation and a new head (default 0);\n"
    "                      every draw depends only on (seed, epoch, image)\n"
    "  --threads N         worker threads (default 0: all hardware threads)\n"
    "  --resume CKPT       continue from a checkpoint at the epoch after it; the result equals an\n"
    "                      uninterrupted run's (give the same MODEL, DATA_DIR and options)\n"
    "  --checkpoint PATH   where to write the checkpoint after every epoch (default NEW.onnx.ckpt)\n"
    "  --log FILE          per-epoch metrics as CSV (epoch,train_loss,train_acc,val_loss,val_acc,\n"
    "                      lr,images_per_s,seconds), rewritten atomically every epoch\n"
    "  --plot FILE         loss and accuracy curves as PNG, rewritten atomically every epoch\n"
    "  --size HxW          input size when the model leaves it dynamic (default convoy.input_size)\n"
    "  --mean a,b,c        per-channel mean after scaling (default convoy.mean, else ImageNet)\n"
    "  --std a,b,c         per-channel std (default convoy.std, else ImageNet)\n"
    "  --scale S           pixel divisor applied first (default convoy.scale, else 255)\n"
    "  --bgr               feed channels in B,G,R order\n"
    "(--size, --mean, --std, --scale and --bgr are written into NEW.onnx's metadata.)\n"
    "\n"
    "Progress goes to stderr: a bar per epoch (one line per 10% when stderr is not a terminal),\n"
    "then one line per epoch: train loss/acc, val loss/acc, learning rate, seconds. The best\n"
    "epoch is printed on stdout at the end.\n",
    finetune_main,
};

}  // namespace convoy::cli
