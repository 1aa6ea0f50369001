// Package llama is the native LLM engine: it loads GGUF models of the llama, qwen2 and qwen3
// architectures and generates text with them in pure Go, matching what llama.cpp computes for
// the same file closely enough that its outputs serve as golden data for the tests.
//
// The pieces:
//
//   - Load reads the hyperparameters and maps the weights of a GGUF file (Model), refusing
//     architectures, tensor types and shapes it cannot run with an error that says which.
//   - The forward pass runs a batch of tokens from any number of sequences through the model at
//     once: a prompt's prefill and one decode step of every running sequence share one pass, so
//     each weight matrix is read from memory once per step however many sequences run
//     (continuous batching). Each sequence keeps its own KV cache, stored as F16 as llama.cpp
//     stores it by default.
//   - Engine serves requests (chat or completion) on one Model: it applies the chat template,
//     tokenizes, schedules the sequences, samples, detokenizes into valid UTF-8 deltas and
//     honours stop strings, max tokens and end-of-generation tokens.
//
// The numerics follow llama.cpp's CPU backend where they change the results: activations are
// rounded to F16 before a dot product with F16 weights (ggml converts them to the weight's
// "vec dot type"), queries are rounded to F16 before they meet the F16 K cache, RMS norms sum
// in float64, and RoPE uses the rotation layout of each architecture (adjacent pairs for llama,
// whose converter permutes Q and K; halves for qwen2 and qwen3, llama.cpp's NEOX mode).
package llama
