#include "engine/kv/block_hash.h"

#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace herd {

namespace {

// One digest context per thread, initialised from an algorithm fetched once: OpenSSL 3's
// one-shot SHA256() / EVP_Q_digest fetch the algorithm and allocate a context on every call,
// which costs more than hashing a 100-byte block (benchmarks/bench_block_hash measures both).
struct Sha256 {
  EVP_MD* md = nullptr;
  EVP_MD_CTX* ctx = nullptr;
  Sha256() : md(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx(EVP_MD_CTX_new()) {
    if (md == nullptr || ctx == nullptr) throw std::runtime_error("OpenSSL: SHA256 unavailable");
  }
  ~Sha256() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  BlockKey digest(const void* data, size_t size) {
    BlockKey k;
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, data, size) != 1 ||
        EVP_DigestFinal_ex(ctx, k.bytes.data(), &len) != 1 || len != k.bytes.size())
      throw std::runtime_error("OpenSSL: SHA256 failed");
    return k;
  }
};

Sha256& sha256() {
  thread_local Sha256 s;
  return s;
}

}  // namespace

std::string BlockKey::hex() const {
  static const char* digits = "0123456789abcdef";
  std::string s(2 * bytes.size(), '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = digits[bytes[i] >> 4];
    s[2 * i + 1] = digits[bytes[i] & 15];
  }
  return s;
}

BlockKey hash_bytes(const void* data, size_t size) { return sha256().digest(data, size); }

std::string random_salt() {
  std::string salt(32, '\0');
  size_t got = 0;
  while (got < salt.size()) {
    const ssize_t n = getrandom(salt.data() + got, salt.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    }
    got += size_t(n);
  }
  return salt;
}

BlockKey server_root_key(std::string_view server_salt) {
  return hash_bytes(server_salt.data(), server_salt.size());
}

BlockKey root_key(const BlockKey& server_root, std::string_view cache_salt) {
  std::vector<unsigned char> buf(server_root.bytes.size() + cache_salt.size());
  std::memcpy(buf.data(), server_root.bytes.data(), server_root.bytes.size());
  if (!cache_salt.empty())
    std::memcpy(buf.data() + server_root.bytes.size(), cache_salt.data(), cache_salt.size());
  return hash_bytes(buf.data(), buf.size());
}

BlockKey block_key(const BlockKey& parent, const KeyInputs& in, int begin, int end) {
  static_assert(std::endian::native == std::endian::little,
                "block keys serialize integers in host order, documented as little-endian");
  const int32_t count = end - begin;
  size_t size = parent.bytes.size() + sizeof(count) + sizeof(int32_t) * size_t(count);
  for (const ExtraKey& e : in.extra)
    if (e.start < end && e.end > begin) size += 2 * sizeof(int32_t) + e.content.bytes.size();
  thread_local std::vector<unsigned char> buf;
  buf.resize(size);
  unsigned char* p = buf.data();
  auto put = [&p](const void* src, size_t n) {
    std::memcpy(p, src, n);
    p += n;
  };
  put(parent.bytes.data(), parent.bytes.size());
  put(&count, sizeof(count));
  for (int i = begin; i < end; ++i) {
    const int32_t t = in.tokens[i];
    put(&t, sizeof(t));
  }
  for (const ExtraKey& e : in.extra) {
    if (e.start < end && e.end > begin) {
      put(&e.start, sizeof(e.start));
      put(&e.end, sizeof(e.end));
      put(e.content.bytes.data(), e.content.bytes.size());
    }
  }
  return hash_bytes(buf.data(), buf.size());
}

}  // namespace herd
