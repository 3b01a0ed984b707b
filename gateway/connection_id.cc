#include "gateway/connection_id.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "common/log.h"

namespace fngate::gateway {

std::string NewConnectionId() {
  unsigned char bytes[11];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // Without randomness ids become guessable: refuse to go on rather than risk it.
    FNGATE_LOG(Error) << "RAND_bytes failed; cannot mint connection ids";
    std::abort();
  }
  std::string id;
  absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)),
                            &id);  // 11 bytes: 15 characters, no padding.
  return id;
}

}  // namespace fngate::gateway
