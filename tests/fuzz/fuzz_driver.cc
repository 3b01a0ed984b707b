// tests/fuzz/fuzz_driver.cc
// main() for a fuzz target in the normal (g++) build, where libFuzzer is not available: it
// feeds LLVMFuzzerTestOneInput every seed file, then a bounded number of cheap random mutations
// of them. The random generator has a fixed seed, so a run is the same every time and a
// failure replays. This is a smoke test on every build, not a fuzzer: the coverage-guided,
// sanitised runs are tests/fuzz/run-long.sh (clang, FNGATE_FUZZ=ON).
//
//   fuzz_envelope [--runs=N] [--seed=S] [--max_len=BYTES] [--dict=FILE] PATH...
//
// PATH is a corpus directory (every regular file in it) or one input file: pass a crash file
// alone to replay it. --dict takes libFuzzer's dictionary format (lines `name="token"`, with
// \\, \" and \xNN escapes), whose tokens the mutations insert. A target reports a bug by
// aborting (tests/fuzz/fuzz_check.h); the driver then writes the input to
// ./fuzz-crash-<target> before the process dies, so it can be replayed and kept as a seed.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// The input being run, for the crash handler. Set before each run; read only there.
const std::string* g_current = nullptr;
char g_crash_path[512];

void OnCrash(int signal_number) {
  // Only async-signal-safe calls here: open, write, close, then die by the same signal.
  if (g_current != nullptr) {
    const int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      const char* p = g_current->data();
      size_t left = g_current->size();
      while (left > 0) {
        const ssize_t n = write(fd, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<size_t>(n);
      }
      close(fd);
      static const char kNote[] = "\nfuzz_driver: the failing input is in ";
      (void)!write(STDERR_FILENO, kNote, sizeof kNote - 1);
      (void)!write(STDERR_FILENO, g_crash_path, strlen(g_crash_path));
      (void)!write(STDERR_FILENO, "\n", 1);
    }
  }
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void InstallCrashHandler(const char* argv0) {
  const std::string name = std::filesystem::path(argv0).filename().string();
  snprintf(g_crash_path, sizeof g_crash_path, "fuzz-crash-%s", name.c_str());
  for (int s : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(s, OnCrash);
}

bool ReadFile(const std::filesystem::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  out = text.str();
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// libFuzzer's dictionary format: one `name="token"` (or `"token"`) per line, # comments.
bool ReadDictionary(const std::string& path, std::vector<std::string>& tokens) {
  std::string text;
  if (!ReadFile(path, text)) return false;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t open = line.find('"');
    const size_t close = line.rfind('"');
    if (line.empty() || line[0] == '#' || open == std::string::npos || close <= open) continue;
    std::string token;
    for (size_t i = open + 1; i < close; ++i) {
      if (line[i] != '\\' || i + 1 >= close) {
        token.push_back(line[i]);
      } else if (line[i + 1] == 'x' && i + 3 < close && HexValue(line[i + 2]) >= 0 &&
                 HexValue(line[i + 3]) >= 0) {
        token.push_back(static_cast<char>(HexValue(line[i + 2]) * 16 + HexValue(line[i + 3])));
        i += 3;
      } else {
        token.push_back(line[++i]);  // \\ or \"
      }
    }
    if (!token.empty()) tokens.push_back(std::move(token));
  }
  return true;
}

// Cheap mutations in the spirit of libFuzzer's: bit flips, byte changes, insertions and
// deletions, copies of ranges, splices of two inputs, runs of one byte (for nesting limits),
// dictionary tokens.
class Mutator {
 public:
  Mutator(uint64_t seed, std::vector<std::string> dictionary, size_t max_len)
      : rng_(seed), dictionary_(std::move(dictionary)), max_len_(max_len) {}

  std::string Mutate(const std::vector<std::string>& corpus) {
    std::string data = corpus.empty() ? std::string() : corpus[Below(corpus.size())];
    const size_t steps = 1 + Below(4);
    for (size_t i = 0; i < steps; ++i) MutateOnce(data, corpus);
    if (data.size() > max_len_) data.resize(max_len_);
    return data;
  }

 private:
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }

  void MutateOnce(std::string& data, const std::vector<std::string>& corpus) {
    static constexpr char kInteresting[] = {
        '\0', '\x7f', '\x80', '\xbf', '\xc0', '\xc3', '\xe2', '\xed', '\xf0', '\xf4', '\xff',
        '"',  '\\',   '{',    '}',    '[',    ']',    ',',    ':',    '%',    '\r', '\n',
        ' ',  '0',    '9',    '-',    '.',    'e',    '&',    '=',    '?',    '/',  '#'};
    const size_t pos = Below(data.size() + 1);
    switch (Below(9)) {
      case 0:  // Flip a bit.
        if (!data.empty()) data[Below(data.size())] ^= static_cast<char>(1u << Below(8));
        break;
      case 1:  // Any byte.
        if (!data.empty()) data[Below(data.size())] = static_cast<char>(Below(256));
        break;
      case 2:  // A byte parsers care about, replacing or inserted.
        if (!data.empty() && Below(2) == 0) {
          data[Below(data.size())] = kInteresting[Below(sizeof kInteresting)];
        } else {
          data.insert(pos, 1, kInteresting[Below(sizeof kInteresting)]);
        }
        break;
      case 3:  // Delete a range.
        if (!data.empty()) data.erase(Below(data.size()), 1 + Below(16));
        break;
      case 4: {  // Copy a range of the input elsewhere into it.
        if (data.empty()) break;
        const size_t from = Below(data.size());
        const std::string piece = data.substr(from, 1 + Below(64));
        data.insert(pos, piece);
        break;
      }
      case 5: {  // Splice: our head, another input's tail.
        if (corpus.empty()) break;
        const std::string& other = corpus[Below(corpus.size())];
        data = data.substr(0, pos) + other.substr(Below(other.size() + 1));
        break;
      }
      case 6:  // A run of one byte: deep nesting, long tokens.
        data.insert(pos, 1 + Below(Below(4) == 0 ? 5000 : 64),
                    kInteresting[Below(sizeof kInteresting)]);
        break;
      case 7:  // Random bytes.
        for (size_t n = 1 + Below(8); n > 0; --n) {
          data.insert(pos, 1, static_cast<char>(Below(256)));
        }
        break;
      case 8:  // A dictionary token.
        if (!dictionary_.empty()) data.insert(pos, dictionary_[Below(dictionary_.size())]);
        break;
    }
  }

  std::mt19937_64 rng_;
  const std::vector<std::string> dictionary_;
  const size_t max_len_;
};

bool ParseSize(std::string_view arg, std::string_view flag, size_t& out) {
  if (arg.substr(0, flag.size()) != flag) return false;
  out = std::strtoull(std::string(arg.substr(flag.size())).c_str(), nullptr, 10);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t runs = 10000, seed = 1, max_len = 64 * 1024;
  std::string dictionary_path;
  std::vector<std::filesystem::path> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (ParseSize(arg, "--runs=", runs) || ParseSize(arg, "--seed=", seed) ||
        ParseSize(arg, "--max_len=", max_len)) {
      continue;
    }
    if (arg.substr(0, 7) == "--dict=") {
      dictionary_path = std::string(arg.substr(7));
    } else if (arg.substr(0, 1) == "-") {
      std::cerr << "usage: " << argv[0]
                << " [--runs=N] [--seed=S] [--max_len=BYTES] [--dict=FILE] CORPUS_DIR_OR_FILE...\n";
      return 2;
    } else {
      paths.emplace_back(arg);
    }
  }

  std::vector<std::string> corpus;
  bool replay_only = true;  // Only single files named: replay them, no mutations.
  for (const std::filesystem::path& path : paths) {
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(path, ec)) {
      replay_only = false;
      for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());  // Directory order is not stable; runs must be.
    } else {
      files.push_back(path);
    }
    for (const std::filesystem::path& file : files) {
      std::string data;
      if (!ReadFile(file, data)) {
        std::cerr << "fuzz_driver: cannot read " << file << "\n";
        return 2;
      }
      corpus.push_back(std::move(data));
    }
  }
  if (corpus.empty()) {
    std::cerr << "fuzz_driver: no inputs (give a corpus directory or files)\n";
    return 2;
  }
  std::vector<std::string> dictionary;
  if (!dictionary_path.empty() && !ReadDictionary(dictionary_path, dictionary)) {
    std::cerr << "fuzz_driver: cannot read " << dictionary_path << "\n";
    return 2;
  }

  InstallCrashHandler(argv[0]);
  auto run = [](const std::string& input) {
    g_current = &input;
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    g_current = nullptr;
  };
  for (const std::string& input : corpus) run(input);
  if (replay_only) runs = 0;
  Mutator mutator(seed, std::move(dictionary), max_len);
  for (size_t i = 0; i < runs; ++i) run(mutator.Mutate(corpus));
  std::cout << "fuzz_driver: " << corpus.size() << " seed inputs and " << runs
            << " mutations (seed " << seed << ") ran without a failure\n";
  return 0;
}
