// bench_block_hash: the cost of one prefix-cache block key (engine/kv/block_hash.h), in ns per
// key and keys/s, next to the hash it replaced (XXH3-128) and to the other ways OpenSSL offers
// to compute the same SHA-256, all over the same serialized bytes in the same run.
//
// Keys are chained as the engine chains them (each key is the next block's parent), so every
// figure is a latency, not a throughput of independent hashes. Rows:
//   block_key (engine)        herd::block_key: serialization + SHA-256 with a per-thread EVP
//                             context (what KvCacheManager runs)
//   SHA256() one-shot         OpenSSL's SHA256(), same bytes
//   EVP_Digest, fetched md    EVP_Digest with an EVP_MD fetched once (a context per call)
//   EVP reused ctx            EVP_DigestInit_ex2/Update/Final on one context (the engine's way)
//   XXH3-128                  the previous key function, same bytes (only when libxxhash was
//                             found at configure time)
// Then what the engine hashes per scheduler step: a prefill chunk of --chunk tokens (one key per
// full block, computed once per sequence: keys live in the sequence's BlockTable) and a decode
// step of --batch sequences (on average batch / block_size blocks fill per step).
//
// usage: bench_block_hash [--block-size N] [--keys N] [--chunk T] [--batch B] [--repeats R]
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "engine/kv/block_hash.h"
#include "engine/kv/block_table.h"
#include "engine/kv/kv_cache_manager.h"

#ifdef HERD_HAVE_XXHASH
#include <xxhash.h>
#endif

namespace {

using herd::BlockKey;
using herd::bench::Clock;
using herd::bench::seconds_since;

struct Options {
  int block_size = 16;
  int keys = 200000;
  int chunk = 2048;
  int batch = 256;
  int repeats = 5;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> int {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (a == "--block-size")
      o.block_size = next();
    else if (a == "--keys")
      o.keys = next();
    else if (a == "--chunk")
      o.chunk = next();
    else if (a == "--batch")
      o.batch = next();
    else if (a == "--repeats")
      o.repeats = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_block_hash [--block-size N] [--keys N] [--chunk T] [--batch B] "
                   "[--repeats R]\n");
      std::exit(2);
    }
  }
  if (o.block_size < 1 || o.keys < 1 || o.chunk < 1 || o.batch < 1 || o.repeats < 1) {
    std::fprintf(stderr, "all values must be >= 1\n");
    std::exit(2);
  }
  return o;
}

// The bytes block_key hashes for one block with no extra keys: parent (32) | count (4) |
// tokens (4 each). The raw-hash rows chain through the first 32 bytes the same way.
std::vector<unsigned char> message(int block_size) {
  std::vector<unsigned char> m(32 + 4 + 4 * size_t(block_size));
  const int32_t count = block_size;
  std::memcpy(m.data() + 32, &count, 4);
  for (int i = 0; i < block_size; ++i) {
    const int32_t t = 1000 + 7 * i;
    std::memcpy(m.data() + 36 + 4 * size_t(i), &t, 4);
  }
  return m;
}

struct Row {
  const char* name;
  double best_ns = 1e300;
  double median_ns = 0;
};

// Runs `one_chain(keys)` `repeats` times; ns per key (best and median over repeats).
Row time_row(const char* name, const Options& o, const std::function<void(int)>& one_chain) {
  one_chain(std::max(1, o.keys / 10));  // warm-up: caches, OpenSSL's lazy init
  std::vector<double> ns;
  for (int r = 0; r < o.repeats; ++r) {
    const auto t0 = Clock::now();
    one_chain(o.keys);
    ns.push_back(seconds_since(t0) * 1e9 / o.keys);
  }
  std::sort(ns.begin(), ns.end());
  Row row{name};
  row.best_ns = ns.front();
  row.median_ns = ns[ns.size() / 2];
  return row;
}

unsigned char g_sink = 0;  // keeps the last key observable

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  herd::bench::print_command_and_machine(argc, argv, 1);
  std::printf("date: %s, load average %s\n", herd::bench::utc_date().c_str(),
              herd::bench::load_average().c_str());
  std::printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
  std::vector<unsigned char> msg = message(o.block_size);
  std::printf("block_size %d: %zu bytes hashed per key (parent 32 + count 4 + tokens %d x 4)\n",
              o.block_size, msg.size(), o.block_size);
  std::printf("%d chained keys per repeat, %d repeats (best and median repeat)\n\n", o.keys,
              o.repeats);

  std::vector<Row> rows;

  // The engine's path: herd::block_key over a TokenSpan, chained.
  std::vector<int32_t> tokens(size_t(o.block_size));
  for (int i = 0; i < o.block_size; ++i) tokens[size_t(i)] = 1000 + 7 * i;
  const herd::KeyInputs in{herd::TokenSpan(tokens, {}), "", {}};
  rows.push_back(time_row("block_key (engine)", o, [&](int n) {
    BlockKey k = herd::root_key(herd::server_root_key("bench"), "");
    for (int i = 0; i < n; ++i) k = herd::block_key(k, in, 0, o.block_size);
    g_sink ^= k.bytes[0];
  }));

  rows.push_back(time_row("SHA256() one-shot", o, [&](int n) {
    unsigned char out[32];
    for (int i = 0; i < n; ++i) {
      SHA256(msg.data(), msg.size(), out);
      std::memcpy(msg.data(), out, 32);
    }
    g_sink ^= out[0];
  }));

  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  rows.push_back(time_row("EVP_Digest, fetched md", o, [&](int n) {
    unsigned char out[32];
    unsigned int len = 0;
    for (int i = 0; i < n; ++i) {
      EVP_Digest(msg.data(), msg.size(), out, &len, md, nullptr);
      std::memcpy(msg.data(), out, 32);
    }
    g_sink ^= out[0];
  }));

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  rows.push_back(time_row("EVP reused ctx", o, [&](int n) {
    unsigned char out[32];
    unsigned int len = 0;
    for (int i = 0; i < n; ++i) {
      EVP_DigestInit_ex2(ctx, md, nullptr);
      EVP_DigestUpdate(ctx, msg.data(), msg.size());
      EVP_DigestFinal_ex(ctx, out, &len);
      std::memcpy(msg.data(), out, 32);
    }
    g_sink ^= out[0];
  }));
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);

#ifdef HERD_HAVE_XXHASH
  rows.push_back(time_row("XXH3-128 (previous)", o, [&](int n) {
    XXH128_hash_t h{};
    for (int i = 0; i < n; ++i) {
      h = XXH3_128bits(msg.data(), msg.size());
      std::memcpy(msg.data(), &h, sizeof h);  // 16 bytes of the 32-byte parent slot
    }
    g_sink ^= (unsigned char)h.low64;
  }));
#else
  std::printf("(XXH3-128 row not built: libxxhash was not found at configure time)\n");
#endif

  std::printf("%-24s %12s %12s %14s\n", "key function", "ns/key best", "ns/key median",
              "keys/s (best)");
  for (const Row& r : rows)
    std::printf("%-24s %12.1f %12.1f %14.3g\n", r.name, r.best_ns, r.median_ns, 1e9 / r.best_ns);

  // Per scheduler step, through KvCacheManager: admitting a prompt whose blocks are all cached
  // walks (and keys) every full block, the most a chunk of this length can cost.
  std::printf("\nper scheduler step, through KvCacheManager (block_size %d):\n", o.block_size);
  {
    std::vector<int32_t> prompt(size_t(o.chunk) + 1);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(i * 31 % 128000);
    const herd::KeyInputs pin{herd::TokenSpan(prompt, {}), "", {}};
    const int nblocks = o.chunk / o.block_size;
    herd::KvCacheManager m(nblocks + 2, o.block_size, true);
    herd::BlockTable first;
    const int taken = m.allocate_slots(first, int(prompt.size()));
    if (taken < 0) return 1;
    m.commit_computed(first, pin, int(prompt.size()));
    m.free(first);
    std::vector<double> us;
    for (int r = 0; r < o.repeats * 20; ++r) {
      herd::BlockTable t;
      const auto t0 = Clock::now();
      const auto hits = m.find_cached_prefix(t, pin);
      us.push_back(seconds_since(t0) * 1e6);
      if (int(hits.size()) != nblocks) return 1;
      g_sink ^= t.keys.back().bytes[0];
    }
    std::sort(us.begin(), us.end());
    std::printf(
        "  prompt of %d tokens, all cached: %d keys + lookups, %.1f us best, %.1f us median\n",
        o.chunk + 1, nblocks, us.front(), us[us.size() / 2]);
  }
  const double decode_keys = double(o.batch) / o.block_size;
  std::printf(
      "  decode step of batch %d: %.1f keys on average (a block fills every %d tokens),"
      " %.2f us at the engine's best ns/key\n",
      o.batch, decode_keys, o.block_size, decode_keys * rows[0].best_ns / 1e3);
  std::printf("load average at the end: %s\n", herd::bench::load_average().c_str());
  return g_sink == 0x5a ? 0 : 0;
}
