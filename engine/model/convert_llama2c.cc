#include "engine/model/convert_llama2c.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "engine/common/error.h"
#include "engine/model/safetensors.h"
#include "engine/model/safetensors_writer.h"
#include "engine/model/weights.h"

namespace herd {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

const char* const kSpace = "\xe2\x96\x81";  // "▁", sentencepiece's visible space

void write_json(const fs::path& path, const ojson& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw Error(path.string() + ": write failed");
}

// Byte length of the UTF-8 sequence starting with lead byte c (1 for stray bytes).
size_t utf8_len(unsigned char c) {
  if (c >= 0xf0) return 4;
  if (c >= 0xe0) return 3;
  if (c >= 0xc0) return 2;
  return 1;
}

std::string hf_piece(size_t id, const std::string& text) {
  // llama2.c's export turned "<s>"/"</s>" into "\n<s>\n"/"\n</s>\n" and "▁" into " ".
  if (id == 1 && text == "\n<s>\n") return "<s>";
  if (id == 2 && text == "\n</s>\n") return "</s>";
  std::string out;
  for (char c : text) {
    if (c == ' ')
      out += kSpace;
    else
      out += c;
  }
  return out;
}

ojson added_token(int id, const char* content) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

}  // namespace

int64_t interleaved_row_for(int64_t r, int64_t head_dim) {
  const int64_t head = r / head_dim, k = r % head_dim, half = head_dim / 2;
  const int64_t j = k / half, i = k % half;
  return head * head_dim + 2 * i + j;
}

std::vector<float> permute_rows_for_rotate_half(const float* w, int64_t n_heads, int64_t head_dim,
                                                int64_t cols) {
  std::vector<float> out(size_t(n_heads * head_dim * cols));
  for (int64_t r = 0; r < n_heads * head_dim; ++r)
    std::memcpy(out.data() + r * cols, w + interleaved_row_for(r, head_dim) * cols,
                size_t(cols) * sizeof(float));
  return out;
}

std::vector<Llama2cPiece> read_llama2c_tokenizer(const std::string& path, int64_t vocab_size) {
  MappedFile f(path);
  const uint8_t* p = f.data();
  size_t pos = 0;
  auto need = [&](size_t n, const std::string& what) {
    if (f.size() - pos < n)
      throw Error(path + ": truncated llama2.c tokenizer file (reading " + what + ")");
  };
  need(4, "max_token_length");
  pos += 4;
  std::vector<Llama2cPiece> pieces;
  for (int64_t i = 0; i < vocab_size; ++i) {
    const std::string what = "token " + std::to_string(i) + " of " + std::to_string(vocab_size);
    need(8, what);
    Llama2cPiece piece;
    int32_t len = 0;
    std::memcpy(&piece.score, p + pos, 4);
    std::memcpy(&len, p + pos + 4, 4);
    pos += 8;
    if (len <= 0 || len > 1024)
      throw Error(path + ": corrupt llama2.c tokenizer file: " + what + " has length " +
                  std::to_string(len));
    need(size_t(len), what);
    piece.text.assign(reinterpret_cast<const char*>(p + pos), size_t(len));
    pos += size_t(len);
    pieces.push_back(std::move(piece));
  }
  if (pos != f.size())
    throw Error(path + ": " + std::to_string(f.size() - pos) + " trailing bytes after " +
                std::to_string(vocab_size) + " tokens (tokenizer does not match the checkpoint?)");
  return pieces;
}

ojson llama2c_tokenizer_json(const std::vector<Llama2cPiece>& pieces) {
  std::vector<std::string> text;
  std::map<std::string, int64_t> id_of;
  ojson vocab = ojson::object();
  for (size_t i = 0; i < pieces.size(); ++i) {
    text.push_back(hf_piece(i, pieces[i].text));
    auto [it, fresh] = id_of.emplace(text.back(), int64_t(i));
    if (!fresh)
      throw Error("tokenizer piece '" + text.back() + "' appears twice (ids " +
                  std::to_string(it->second) + " and " + std::to_string(i) + ")");
    vocab[text.back()] = int64_t(i);
  }

  // transformers' SentencePieceExtractor: every split of a piece into two pieces of the vocab
  // is a merge with that piece's score; splits of one piece ordered by (id left, id right);
  // all merges then stably sorted by score, highest first.
  struct Merge {
    int64_t left, right;
    float score;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < text.size(); ++i) {
    const std::string& t = text[i];
    std::vector<Merge> local;
    for (size_t cut = utf8_len(t[0]); cut < t.size(); cut += utf8_len(t[cut])) {
      auto l = id_of.find(t.substr(0, cut)), r = id_of.find(t.substr(cut));
      if (l != id_of.end() && r != id_of.end())
        local.push_back({l->second, r->second, pieces[i].score});
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return std::pair(a.left, a.right) < std::pair(b.left, b.right);
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  ojson merge_list = ojson::array();
  for (const Merge& m : merges)
    merge_list.push_back(text[size_t(m.left)] + " " + text[size_t(m.right)]);

  ojson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = {added_token(0, "<unk>"), added_token(1, "<s>"), added_token(2, "</s>")};
  j["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Prepend"}, {"prepend", kSpace}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}}}};
  j["pre_tokenizer"] = nullptr;
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair",
       {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", {{"id", "<s>"}, {"type_id", 1}}}},
        {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                    {{"type", "ByteFallback"}},
                    {{"type", "Fuse"}},
                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", "<unk>"},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", true},
                {"byte_fallback", true},
                {"vocab", vocab},
                {"merges", merge_list}};
  return j;
}

Llama2cHeader convert_llama2c(const std::string& checkpoint, const std::string& tokenizer,
                              const std::string& output_dir) {
  MappedFile f(checkpoint);
  if (f.size() < 28) throw Error(checkpoint + ": truncated llama2.c checkpoint (no header)");
  int32_t hd[7];
  std::memcpy(hd, f.data(), sizeof hd);
  Llama2cHeader h{hd[0], hd[1], hd[2], hd[3], hd[4], hd[5] < 0 ? -hd[5] : hd[5], hd[6], hd[5] > 0};
  const char* names[] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                         "n_kv_heads", "vocab_size", "seq_len"};
  const int32_t vals[] = {h.dim,        h.hidden_dim, h.n_layers, h.n_heads,
                          h.n_kv_heads, h.vocab_size, h.seq_len};
  for (int i = 0; i < 7; ++i)
    if (vals[i] <= 0 || vals[i] > (1 << 20))
      throw Error(checkpoint + ": corrupt llama2.c header: " + names[i] + " = " +
                  std::to_string(hd[i]));
  if (h.dim % h.n_heads != 0 || h.n_heads % h.n_kv_heads != 0 || (h.dim / h.n_heads) % 2 != 0)
    throw Error(checkpoint + ": corrupt llama2.c header: dim " + std::to_string(h.dim) +
                ", n_heads " + std::to_string(h.n_heads) + ", n_kv_heads " +
                std::to_string(h.n_kv_heads) + " are inconsistent");
  const int64_t dim = h.dim, hid = h.hidden_dim, L = h.n_layers, V = h.vocab_size;
  const int64_t head = dim / h.n_heads, kv_dim = dim * h.n_kv_heads / h.n_heads;

  // Walk the float arrays in file order.
  const float* base = reinterpret_cast<const float*>(f.data() + 28);
  const int64_t available = int64_t((f.size() - 28) / 4);
  int64_t at = 0;
  auto next = [&](int64_t n, const char* what) {
    if (available - at < n)
      throw Error(checkpoint + ": truncated llama2.c checkpoint (file ends inside " +
                  std::string(what) + ")");
    const float* p = base + at;
    at += n;
    return p;
  };
  const float* tok = next(V * dim, "tok_embeddings");
  const float* rms_att = next(L * dim, "rms_att_weight");
  const float* wq = next(L * dim * dim, "wq");
  const float* wk = next(L * kv_dim * dim, "wk");
  const float* wv = next(L * kv_dim * dim, "wv");
  const float* wo = next(L * dim * dim, "wo");
  const float* rms_ffn = next(L * dim, "rms_ffn_weight");
  const float* w1 = next(L * hid * dim, "w1");
  const float* w2 = next(L * dim * hid, "w2");
  const float* w3 = next(L * hid * dim, "w3");
  const float* rms_final = next(dim, "rms_final_weight");
  next(int64_t(h.seq_len) * head, "freq_cis tables");  // legacy RoPE tables: unused
  const float* wcls = h.shared_classifier ? tok : next(V * dim, "wcls");
  if (at != available || (f.size() - 28) % 4 != 0)
    throw Error(checkpoint + ": " + std::to_string(f.size() - 28 - size_t(at) * 4) +
                " unexpected trailing bytes (header does not match the data)");

  std::vector<Llama2cPiece> pieces;
  ojson tok_json;
  try {
    pieces = read_llama2c_tokenizer(tokenizer, V);
    tok_json = llama2c_tokenizer_json(pieces);
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.rfind(tokenizer, 0) == 0) throw;
    throw Error(tokenizer + ": " + m);
  }

  const fs::path out(output_dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(output_dir + ": cannot create directory: " + ec.message());

  ojson c;
  c["architectures"] = {"LlamaForCausalLM"};
  c["bos_token_id"] = 1;
  c["eos_token_id"] = 2;
  c["hidden_act"] = "silu";
  c["hidden_size"] = dim;
  c["intermediate_size"] = hid;
  c["max_position_embeddings"] = h.seq_len;
  c["model_type"] = "llama";
  c["num_attention_heads"] = h.n_heads;
  c["num_hidden_layers"] = L;
  c["num_key_value_heads"] = h.n_kv_heads;
  c["rms_norm_eps"] = 1e-5;
  c["rope_theta"] = 10000.0;
  c["tie_word_embeddings"] = h.shared_classifier;
  c["torch_dtype"] = "float32";
  c["vocab_size"] = V;
  write_json(out / "config.json", c);
  write_json(out / "generation_config.json", {{"bos_token_id", 1}, {"eos_token_id", 2}});
  write_json(out / "tokenizer.json", tok_json);
  write_json(out / "tokenizer_config.json", {{"add_bos_token", true},
                                             {"add_eos_token", false},
                                             {"bos_token", "<s>"},
                                             {"eos_token", "</s>"},
                                             {"unk_token", "<unk>"},
                                             {"clean_up_tokenization_spaces", false},
                                             {"legacy", true},
                                             {"model_max_length", h.seq_len},
                                             {"pad_token", nullptr},
                                             {"tokenizer_class", "LlamaTokenizer"}});

  std::vector<std::vector<float>> permuted;  // keeps permuted wq/wk alive until written
  permuted.reserve(size_t(2 * L));
  std::vector<TensorSpec> t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, const float* data) {
    t.push_back(tensor_from_memory(name, DType::kF32, std::move(shape), data));
  };
  add("model.embed_tokens.weight", {V, dim}, tok);
  for (int64_t l = 0; l < L; ++l) {
    auto n = [l](const char* m) { return llama_layer_tensor_name(l, m); };
    add(n("input_layernorm"), {dim}, rms_att + l * dim);
    permuted.push_back(permute_rows_for_rotate_half(wq + l * dim * dim, h.n_heads, head, dim));
    add(n("self_attn.q_proj"), {dim, dim}, permuted.back().data());
    permuted.push_back(
        permute_rows_for_rotate_half(wk + l * kv_dim * dim, h.n_kv_heads, head, dim));
    add(n("self_attn.k_proj"), {kv_dim, dim}, permuted.back().data());
    add(n("self_attn.v_proj"), {kv_dim, dim}, wv + l * kv_dim * dim);
    add(n("self_attn.o_proj"), {dim, dim}, wo + l * dim * dim);
    add(n("post_attention_layernorm"), {dim}, rms_ffn + l * dim);
    add(n("mlp.gate_proj"), {hid, dim}, w1 + l * hid * dim);
    add(n("mlp.up_proj"), {hid, dim}, w3 + l * hid * dim);
    add(n("mlp.down_proj"), {dim, hid}, w2 + l * dim * hid);
  }
  add("model.norm.weight", {dim}, rms_final);
  if (!h.shared_classifier) add("lm_head.weight", {V, dim}, wcls);
  write_safetensors_dir(output_dir, t);
  return h;
}

}  // namespace herd
