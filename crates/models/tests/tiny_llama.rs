//! The chat model loader on a tiny llama GGUF made here (random weights, Q4_1 tensors, a byte-level BPE
//! tokenizer and a Llama 3 chat template): it must not assume SmolLM2 (what `ONDA_LOCAL_MODEL` may
//! name), re-quantise Q4_1, and give the same tokens with and without a prompt cache. Needs no download.

use std::ops::ControlFlow;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use onda_models::chat::{ChatFormat, ChatModel, GenerationParams, Message, StopReason};

const DIM: usize = 64;
const HIDDEN: usize = 128;
const HEADS: u32 = 4;
const KV_HEADS: u32 = 2;
const LAYERS: usize = 2;
const SPECIALS: [&str; 4] = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];

/// GPT-2's byte-to-character table: the vocabulary of a byte-level BPE.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut table = vec![' '; 256];
    for (b, c) in printable.iter().zip(chars) {
        table[*b as usize] = char::from_u32(c).expect("valid char");
    }
    table
}

fn vocabulary() -> (Vec<String>, Vec<String>, Vec<i32>) {
    let table = byte_chars();
    let mut tokens: Vec<String> = table.iter().map(|c| c.to_string()).collect();
    let space = table[b' ' as usize];
    let merges = vec!["h e".to_string(), format!("{space} he")];
    tokens.push("he".into());
    tokens.push(format!("{space}he"));
    let mut types = vec![1; tokens.len()];
    for special in SPECIALS {
        tokens.push(special.into());
        types.push(3);
    }
    (tokens, merges, types)
}

fn random(shape: (usize, usize), seed: u64) -> Tensor {
    // A small deterministic generator: the same file every run.
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let values: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).expect("tensor")
}

fn write_tiny_llama(path: &Path, architecture: &str, tokenizer_model: &str) -> usize {
    let (tokens, merges, types) = vocabulary();
    let vocab = tokens.len();
    let strings = |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
    let template = "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}";
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String(architecture.into())),
        ("general.name", Value::String("tiny test llama".into())),
        ("llama.block_count", Value::U32(LAYERS as u32)),
        ("llama.context_length", Value::U32(96)),
        ("llama.embedding_length", Value::U32(DIM as u32)),
        ("llama.feed_forward_length", Value::U32(HIDDEN as u32)),
        ("llama.attention.head_count", Value::U32(HEADS)),
        ("llama.attention.head_count_kv", Value::U32(KV_HEADS)),
        ("llama.rope.dimension_count", Value::U32(DIM as u32 / HEADS)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
        ("tokenizer.ggml.model", Value::String(tokenizer_model.into())),
        ("tokenizer.ggml.pre", Value::String("llama-bpe".into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.merges", strings(&merges)),
        ("tokenizer.ggml.token_type", Value::Array(types.iter().map(|t| Value::I32(*t)).collect())),
        ("tokenizer.ggml.bos_token_id", Value::U32(vocab as u32 - 4)),
        ("tokenizer.ggml.eos_token_id", Value::U32(vocab as u32 - 1)),
        ("tokenizer.chat_template", Value::String(template.into())),
    ];
    let cpu = Device::Cpu;
    let q = |t: &Tensor, dtype| QTensor::quantize(t, dtype).expect("quantize");
    let ones = |n: usize| {
        QTensor::quantize(&Tensor::ones((n,), candle_core::DType::F32, &cpu).expect("ones"), GgmlDType::F32)
            .expect("q")
    };
    let kv = DIM / HEADS as usize * KV_HEADS as usize;
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), q(&random((vocab, DIM), 1), GgmlDType::Q8_0)),
        ("output_norm.weight".into(), ones(DIM)),
        ("output.weight".into(), q(&random((vocab, DIM), 2), GgmlDType::Q4_1)),
    ];
    for layer in 0..LAYERS {
        let seed = 10 + layer as u64 * 10;
        let p = |name: &str| format!("blk.{layer}.{name}.weight");
        tensors.push((p("attn_norm"), ones(DIM)));
        tensors.push((p("ffn_norm"), ones(DIM)));
        tensors.push((p("attn_q"), q(&random((DIM, DIM), seed), GgmlDType::Q4_1)));
        tensors.push((p("attn_k"), q(&random((kv, DIM), seed + 1), GgmlDType::Q4_1)));
        tensors.push((p("attn_v"), q(&random((kv, DIM), seed + 2), GgmlDType::Q4_1)));
        tensors.push((p("attn_output"), q(&random((DIM, DIM), seed + 3), GgmlDType::Q4_1)));
        tensors.push((p("ffn_gate"), q(&random((HIDDEN, DIM), seed + 4), GgmlDType::Q4_1)));
        tensors.push((p("ffn_up"), q(&random((HIDDEN, DIM), seed + 5), GgmlDType::Q4_1)));
        tensors.push((p("ffn_down"), q(&random((DIM, HIDDEN), seed + 6), GgmlDType::Q4_1)));
    }
    let q4_1 = tensors.iter().filter(|(_, t)| t.dtype() == GgmlDType::Q4_1).count();
    let mut file = std::fs::File::create(path).expect("create");
    let metadata_refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    gguf_file::write(&mut file, &metadata_refs, &tensor_refs).expect("write gguf");
    q4_1
}

fn greedy(max_tokens: usize) -> GenerationParams {
    GenerationParams {
        temperature: 0.0,
        repeat_penalty: 1.0,
        max_tokens,
        seed: Some(1),
        ..GenerationParams::default()
    }
}

fn run(
    model: &ChatModel,
    messages: &[Message],
    cache: Option<&onda_models::PromptCache>,
) -> onda_models::Generation {
    model.generate(messages, cache, &greedy(12), |_| ControlFlow::Continue(())).expect("generate")
}

#[test]
fn any_llama_gguf_loads_with_its_own_tokenizer_and_template() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tiny.gguf");
    let q4_1 = write_tiny_llama(&path, "llama", "gpt2");
    let model = ChatModel::load(&path).expect("load");
    assert_eq!(model.name(), "tiny test llama");
    assert_eq!(model.format(), ChatFormat::Llama3);
    assert_eq!(model.requantized_tensors(), q4_1);
    assert_eq!(model.context_length(), 96);

    // The merges apply, with no spurious leading space: "he" alone is the "he" token, not " he".
    let (tokens, _, _) = vocabulary();
    let id = |t: &str| tokens.iter().position(|x| x == t).expect("token") as u32;
    let space = byte_chars()[b' ' as usize];
    assert_eq!(model.encode("he").expect("encode"), [id("he")]);
    assert_eq!(model.encode("he he").expect("encode"), [id("he"), id(&format!("{space}he"))]);
    assert_eq!(model.encode("<|eot_id|>").expect("encode"), [id("<|eot_id|>")]);
    assert_eq!(model.decode(&model.encode("héllo 🦝").expect("encode")).expect("decode"), "héllo 🦝");

    let messages = [Message::system("be kind"), Message::user("hi")];
    assert_eq!(
        model.render(&messages, true),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe kind<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );

    // Random weights babble, but deterministically, and the prompt cache changes nothing.
    let cold = run(&model, &messages, None);
    assert!(cold.generated_tokens > 0);
    assert!(matches!(cold.stop, StopReason::MaxTokens | StopReason::EndOfTurn));
    let cache = model.prefill(&messages[..1]).expect("prefill");
    let warm = run(&model, &messages, Some(&cache));
    assert_eq!(warm.cached_prompt_tokens, cache.len());
    assert_eq!(cold.text, warm.text);
    assert_eq!(cold.generated_tokens, warm.generated_tokens);

    // The context is small: a long generation stops when it is full.
    let long =
        model.generate(&messages, None, &greedy(500), |_| ControlFlow::Continue(())).expect("generate");
    assert!(matches!(long.stop, StopReason::ContextFull | StopReason::EndOfTurn), "{:?}", long.stop);
    assert!(long.prompt_tokens + long.generated_tokens <= 96);
}

#[test]
fn other_architectures_and_tokenizers_are_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gemma.gguf");
    write_tiny_llama(&path, "gemma", "gpt2");
    let err = ChatModel::load(&path).expect_err("not llama");
    assert!(err.to_string().contains("only llama-architecture"), "{err}");
    write_tiny_llama(&path, "llama", "llama");
    let err = ChatModel::load(&path).expect_err("SentencePiece");
    assert!(err.to_string().contains("byte-level BPE"), "{err}");
    std::fs::write(&path, b"not a gguf").expect("write");
    let err = ChatModel::load(&path).expect_err("garbage");
    assert!(err.to_string().contains("not a readable GGUF"), "{err}");
    let err = ChatModel::load(&dir.path().join("absent.gguf")).expect_err("missing");
    assert!(err.to_string().contains("onda models fetch"), "{err}");
}

#[test]
fn models_are_shareable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<ChatModel>();
    shareable::<onda_models::PromptCache>();
    shareable::<onda_models::Embedder>();
}
