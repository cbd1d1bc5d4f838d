// bench_onednn_vs_herd: oneDNN's BF16 matmul against herd's own packed kernel (linear_bf16.h)
// on the same shapes, threads and data, to decide whether the CPU backend should adopt oneDNN
// (issue 16). Both libraries do the same work per call: fp32 activations rounded to bf16,
// bf16 weights packed once into the library's preferred layout (outside timing), fp32
// accumulation, fp32 output.
//
// Weights are rotated through copies totalling >= 256 MiB per library so that every call
// streams its weight from DRAM (the decode regime), and the two libraries are timed in
// alternating bursts of the same loop so that a drifting clock or a neighbour's load hits both.
// Then, without timing: batch invariance (is a row's output bitwise the same alone, in a batch
// of 8 and in a batch of 128?) and the agreement between the two libraries.
//
// usage: bench_onednn_vs_herd [--rounds R]   (R bursts per library and batch size, default 6)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/bench_util.h"
#include "kernels/cpu/linear_bf16.h"
#include "kernels/cpu/thread_pool.h"

namespace {

using herd::bench::Clock;
using herd::bench::seconds_since;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

constexpr int kThreads = 2;
constexpr int kCopies = 8;  // 8 x 32 MiB per library: far beyond any last-level cache
constexpr int64_t kBatches[] = {1, 8, 128};
constexpr int64_t kCheckRows[] = {0, 5, 77};

struct Shape {
  int64_t out, in;
};
constexpr Shape kShapes[] = {{2048, 8192}, {8192, 2048}};

// Round-to-nearest-even, as both libraries round the activations (inputs here are finite).
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<float> random_floats(size_t count, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(count);
  for (auto& f : v) f = dist(rng);
  return v;
}

// One oneDNN matmul for one batch size: the primitive, its src f32 -> bf16 reorder (timed: it
// is the activation rounding herd's kernel does inside its call) and the weights in the
// primitive's layout. Layouts equal across batch sizes share their copies.
struct DnnlLinear {
  int64_t n = 0, in = 0;
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  dnnl::reorder to_bf16;
  dnnl::memory x_bf16;
  std::shared_ptr<std::vector<dnnl::memory>> weights;
};

struct Dnnl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};

  // Matmul weights are [K, N] = [in, out]; herd's row-major [out, in] is that in tag::ba.
  DnnlLinear make(int64_t n, const Shape& s, const uint16_t* w,
                  std::vector<std::shared_ptr<std::vector<dnnl::memory>>>& layouts) {
    DnnlLinear l;
    l.n = n;
    l.in = s.in;
    const dnnl::memory::desc src({n, s.in}, dt::bf16, tag::ab), dst({n, s.out}, dt::f32, tag::ab);
    const dnnl::memory::desc wany({s.in, s.out}, dt::bf16, tag::any);
    l.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wany, dst), eng);
    l.prim = dnnl::matmul(l.pd);
    const dnnl::memory::desc xf32({n, s.in}, dt::f32, tag::ab);
    l.to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(eng, xf32, eng, src));
    l.x_bf16 = dnnl::memory(src, eng);
    for (auto& copies : layouts)
      if (copies->front().get_desc() == l.pd.weights_desc()) l.weights = copies;
    if (!l.weights) {  // oneDNN's "pack once": reorder each copy into the preferred layout
      l.weights = std::make_shared<std::vector<dnnl::memory>>();
      dnnl::memory user({{s.in, s.out}, dt::bf16, tag::ba}, eng, const_cast<uint16_t*>(w));
      for (int c = 0; c < kCopies; ++c) {
        l.weights->emplace_back(l.pd.weights_desc(), eng);
        dnnl::reorder(user, l.weights->back()).execute(stream, user, l.weights->back());
      }
      stream.wait();
      layouts.push_back(l.weights);
    }
    return l;
  }

  void run(DnnlLinear& l, const float* x, int copy, float* out) {
    dnnl::memory xm({{l.n, l.in}, dt::f32, tag::ab}, eng, const_cast<float*>(x));
    dnnl::memory om(l.pd.dst_desc(), eng, out);
    l.to_bf16.execute(stream, xm, l.x_bf16);
    l.prim.execute(stream, {{DNNL_ARG_SRC, l.x_bf16},
                            {DNNL_ARG_WEIGHTS, (*l.weights)[size_t(copy)]},
                            {DNNL_ARG_DST, om}});
    stream.wait();
  }
};

// Whether this oneDNN takes fp32 activations with bf16 weights directly (it would save the
// reorder); 2.x answers no, hence the reorder above.
bool dnnl_takes_f32_src(Dnnl& d) {
  try {
    const dnnl::memory::desc src({1, 64}, dt::f32, tag::ab), dst({1, 64}, dt::f32, tag::ab);
    const dnnl::memory::desc w({64, 64}, dt::bf16, tag::any);
    dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, w, dst), d.eng);
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

const char* runtime_name(unsigned r) {
  switch (r) {
    case DNNL_RUNTIME_SEQ:
      return "sequential";
    case DNNL_RUNTIME_OMP:
      return "OpenMP";
    case DNNL_RUNTIME_TBB:
      return "TBB";
    case DNNL_RUNTIME_THREADPOOL:
      return "threadpool";
    default:
      return "other";
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

float max_abs_diff(const float* a, const float* b, int64_t count) {
  float m = 0.0f;
  for (int64_t i = 0; i < count; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 6;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--rounds R]\n", argv[0]);
      return 2;
    }
  }
  if (!herd::cpu::bf16_gemm_supported()) {
    std::fprintf(stderr, "this CPU has no AVX-512 BF16: herd's kernel cannot run\n");
    return 1;
  }
  // The Debian build's runtime is OpenMP (checked below): OMP_NUM_THREADS is read at load,
  // so the count is set here, before the first primitive.
  omp_set_num_threads(kThreads);
  herd::cpu::ThreadPool pool(kThreads);
  Dnnl dnnl;

  herd::bench::print_command_and_machine(argc, argv, kThreads);
  const dnnl::version_t* v = dnnl::version();
  std::printf("date: %s, load average %s\n", herd::bench::utc_date().c_str(),
              herd::bench::load_average().c_str());
  std::printf("oneDNN %d.%d.%d (%s), CPU runtime %s, effective ISA code %d, %d threads\n", v->major,
              v->minor, v->patch, v->hash ? v->hash : "?", runtime_name(v->cpu_runtime),
              int(dnnl::get_effective_cpu_isa()), omp_get_max_threads());
  std::printf(
      "oneDNN matmul f32 src x bf16 weights: %s; timed oneDNN call = reorder f32->bf16 "
      "(src) + matmul\n",
      dnnl_takes_f32_src(dnnl) ? "supported" : "not supported");
  {
    const size_t bytes = size_t(256) << 20;
    auto buf = herd::bench::make_read_buffer(pool, bytes);
    double best = 0;
    for (int i = 0; i < 3; ++i)
      best = std::max(best, herd::bench::read_pass(pool, buf.data(), bytes));
    std::printf("streaming read, %d threads, 256 MiB: %.1f GB/s (the n = 1 ceiling)\n", kThreads,
                best);
  }
  std::printf(
      "per call: best and median ms over %d bursts x %d copies; GFLOP/s and GB/s (weight "
      "+ activations + output bytes) at the median; herd/oneDNN = time ratio (< 1: herd "
      "faster)\n\n",
      rounds, kCopies);

  for (const Shape& s : kShapes) {
    const auto wf = random_floats(size_t(s.out * s.in), 0.05f, 1);
    std::vector<uint16_t> w(wf.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = to_bf16(wf[i]);

    std::vector<herd::cpu::PackedBf16Weight> packed;
    for (int c = 0; c < kCopies; ++c)
      packed.push_back(herd::cpu::pack_bf16_weight(pool, w.data(), s.out, s.in, s.in));
    std::vector<std::shared_ptr<std::vector<dnnl::memory>>> layouts;
    std::vector<DnnlLinear> dl;
    for (int64_t n : kBatches) dl.push_back(dnnl.make(n, s, w.data(), layouts));

    std::printf(
        "W [%lld x %lld] bf16 (%.0f MiB, %d copies per library); oneDNN impl %s, %zu "
        "weight layout(s) over the batch sizes\n",
        (long long)s.out, (long long)s.in, double(s.out * s.in * 2) / (1 << 20), kCopies,
        dl.back().pd.impl_info_str(), layouts.size());
    std::printf("%5s | %-8s %8s %8s %8s %7s | %-8s %8s %8s %8s %7s | %s\n", "n", "herd", "best ms",
                "med ms", "GFLOP/s", "GB/s", "oneDNN", "best ms", "med ms", "GFLOP/s", "GB/s",
                "herd/oneDNN best, median");

    const auto x = random_floats(size_t(128 * s.in), 1.0f, 2);
    std::vector<float> out(size_t(128 * s.out));
    for (size_t b = 0; b < dl.size(); ++b) {
      const int64_t n = kBatches[b];
      std::vector<double> th, td;
      auto burst = [&](bool herd_side, bool keep) {
        for (int c = 0; c < kCopies; ++c) {
          const auto t0 = Clock::now();
          if (herd_side)
            herd::cpu::linear_bf16_packed(pool, x.data(), n, packed[size_t(c)], out.data());
          else
            dnnl.run(dl[b], x.data(), c, out.data());
          if (keep) (herd_side ? th : td).push_back(seconds_since(t0));
        }
        // Idle workers of either library spin for a while (OpenMP's for milliseconds) and
        // would steal a core from the other's next burst on this 2-core budget.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      };
      burst(true, false);  // warm-up: first touch, thread start
      burst(false, false);
      for (int r = 0; r < rounds; ++r) {
        burst(r % 2 == 0, true);  // alternate who goes first
        burst(r % 2 != 0, true);
      }
      const double flops = 2.0 * double(n) * double(s.out) * double(s.in);
      const double bytes = double(s.out * s.in * 2 + n * s.in * 4 + n * s.out * 4);
      const double hb = *std::min_element(th.begin(), th.end()), hm = median(th);
      const double db = *std::min_element(td.begin(), td.end()), dm = median(td);
      std::printf(
          "%5lld | %-8s %8.3f %8.3f %8.1f %7.1f | %-8s %8.3f %8.3f %8.1f %7.1f | %.2f, %.2f\n",
          (long long)n, "", hb * 1e3, hm * 1e3, flops / hm / 1e9, bytes / hm / 1e9, "", db * 1e3,
          dm * 1e3, flops / dm / 1e9, bytes / dm / 1e9, hb / db, hm / dm);
    }

    // Batch invariance and agreement (untimed). The batch of 8 holds the row at position 3,
    // not where it sits in the batch of 128.
    const int64_t O = s.out, I = s.in;
    std::vector<float> hfull(size_t(128 * O)), dfull(size_t(128 * O));
    herd::cpu::linear_bf16_packed(pool, x.data(), 128, packed[0], hfull.data());
    dnnl.run(dl[2], x.data(), 0, dfull.data());
    std::printf("batch invariance vs the n = 128 rows (bitwise, else max abs diff):\n");
    for (int64_t row : kCheckRows) {
      std::vector<float> x8(size_t(8 * I)), h1(static_cast<size_t>(O)), d1(static_cast<size_t>(O)),
          h8(size_t(8 * O)), d8(size_t(8 * O));
      for (int64_t k = 0; k < 8; ++k)
        std::copy_n(&x[size_t(((row + k - 3 + 128) % 128) * I)], I, &x8[size_t(k * I)]);
      const float* xr = &x[size_t(row * I)];
      herd::cpu::linear_bf16_packed(pool, xr, 1, packed[0], h1.data());
      herd::cpu::linear_bf16_packed(pool, x8.data(), 8, packed[0], h8.data());
      dnnl.run(dl[0], xr, 0, d1.data());
      dnnl.run(dl[1], x8.data(), 0, d8.data());
      auto verdict = [&](const float* full, const float* got) {
        if (std::memcmp(full, got, size_t(O) * 4) == 0) return std::string("bitwise equal");
        char buf[64];
        std::snprintf(buf, sizeof buf, "DIFFERS, max %.3g", max_abs_diff(full, got, O));
        return std::string(buf);
      };
      const float* hr = &hfull[size_t(row * O)];
      const float* dr = &dfull[size_t(row * O)];
      std::printf("  row %3lld: herd n=1 %s, n=8 %s | oneDNN n=1 %s, n=8 %s\n", (long long)row,
                  verdict(hr, h1.data()).c_str(), verdict(hr, &h8[3 * size_t(O)]).c_str(),
                  verdict(dr, d1.data()).c_str(), verdict(dr, &d8[3 * size_t(O)]).c_str());
    }

    // Agreement: both against each other over n = 128, and against a float64 sum of the same
    // bf16-rounded products on the checked rows (what both approximate, up to fp32 order).
    float max_out = 0;
    for (float f : hfull) max_out = std::max(max_out, std::fabs(f));
    const float hd = max_abs_diff(hfull.data(), dfull.data(), 128 * O);
    double href = 0, dref = 0, max_ref = 0;
    for (int64_t row : kCheckRows)
      for (int64_t j = 0; j < O; ++j) {
        double acc = 0;
        for (int64_t i = 0; i < I; ++i)
          acc += double(from_bf16(to_bf16(x[size_t(row * I + i)]))) *
                 double(from_bf16(w[size_t(j * I + i)]));
        max_ref = std::max(max_ref, std::fabs(acc));
        href = std::max(href, std::fabs(acc - hfull[size_t(row * O + j)]));
        dref = std::max(dref, std::fabs(acc - dfull[size_t(row * O + j)]));
      }
    std::printf(
        "agreement, n = 128: max|oneDNN - herd| / max|out| = %.2e (max|out| %.3g); "
        "vs float64 of bf16 inputs, rows 0/5/77: herd %.2e, oneDNN %.2e\n\n",
        double(hd) / double(max_out), double(max_out), href / max_ref, dref / max_ref);
  }
  std::printf("load average after: %s\n", herd::bench::load_average().c_str());
  return 0;
}
