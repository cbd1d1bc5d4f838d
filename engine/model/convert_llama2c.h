// convert-llama2c: turns a llama2.c legacy checkpoint (+ its tokenizer .bin) into a Hugging
// Face Llama directory (config.json, generation_config.json, f32 model.safetensors,
// tokenizer.json in the Llama-2 sentencepiece-BPE format, tokenizer_config.json).
//
// The one non-obvious step: llama2.c rotates interleaved pairs (2i, 2i+1) of each head, HF
// Llama rotates halves (i, i + head_dim/2), so the rows of wq and wk are permuted per head
// (the same permutation as transformers' convert_llama_weights_to_hf.py).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace herd {

struct Llama2cHeader {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
  bool shared_classifier = true;  // vocab_size was positive in the file
};

// Row r of the permuted (rotate-half) matrix is row interleaved_row_for(r) of the llama2.c
// one: within each head, new row j*head_dim/2 + i takes old row 2i + j.
int64_t interleaved_row_for(int64_t rotate_half_row, int64_t head_dim);

// Permutes the rows of a [n_heads * head_dim, cols] row-major f32 matrix from interleaved-pair
// to rotate-half order.
std::vector<float> permute_rows_for_rotate_half(const float* w, int64_t n_heads, int64_t head_dim,
                                                int64_t cols);

struct Llama2cPiece {
  std::string text;  // as stored in the .bin (spaces are spaces)
  float score = 0.0f;
};

// Reads a llama2.c tokenizer .bin with `vocab_size` records; throws herd::Error naming the file.
std::vector<Llama2cPiece> read_llama2c_tokenizer(const std::string& path, int64_t vocab_size);

// The Hugging Face tokenizer.json (Llama-2 sentencepiece-BPE flavour) for those pieces; merges
// derived from the scores as transformers' SentencePieceExtractor does.
nlohmann::ordered_json llama2c_tokenizer_json(const std::vector<Llama2cPiece>& pieces);

// Does the whole conversion; returns the checkpoint header it read.
Llama2cHeader convert_llama2c(const std::string& checkpoint, const std::string& tokenizer,
                              const std::string& output_dir);

}  // namespace herd
