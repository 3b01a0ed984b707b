// File: tests/support/temp_dir.h
// TempDir: a fresh private directory under $TMPDIR (or /tmp), removed with everything in it
// when the object dies. For files a test hands to the processes it starts (certificates,
// tokens, configs).
//
//   absl::StatusOr<TempDir> dir = TempDir::Create();
//   absl::Status written = dir->WriteFile("token", "s3cret-token-0123456789");
//   std::string path = dir->Path("token");
//
// Thread safety: none needed beyond the file system's; movable, not copyable.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fngate::test_support {

class TempDir {
 public:
  static absl::StatusOr<TempDir> Create();

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // <dir>/<name>.
  std::string Path(absl::string_view name) const;
  // Writes `contents` to <dir>/<name> (mode 0600), replacing it atomically (a reader sees
  // the old file or the new one, never half of it).
  absl::Status WriteFile(absl::string_view name, absl::string_view contents) const;

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;  // Empty once moved from.
};

}  // namespace fngate::test_support
