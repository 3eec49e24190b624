//! The embedded chat model (SmolLM2-135M-Instruct): its tokenizer against llama.cpp's, the chat
//! template, streaming, stopping, cancelling and the prompt cache. Needs the model file
//! (`onda models fetch`); without it each test says so and passes.

use std::ops::ControlFlow;
use std::sync::OnceLock;

use onda_models::chat::{ChatFormat, ChatModel, GenerationParams, Message, StopReason, TextStream};
use onda_models::fetch::{CHAT_MODEL_FILE, default_models_dir};

fn model() -> Option<&'static ChatModel> {
    static MODEL: OnceLock<Option<ChatModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            // The default model, whatever ONDA_LOCAL_MODEL says: these tests pin its token ids.
            let path = default_models_dir().join(CHAT_MODEL_FILE);
            if !path.is_file() {
                eprintln!(
                    "SKIPPED: the chat model is not at {} (run `onda models fetch` to test it)",
                    path.display()
                );
                return None;
            }
            Some(ChatModel::load(&path).expect("the chat model loads"))
        })
        .as_ref()
}

fn greedy(max_tokens: usize) -> GenerationParams {
    GenerationParams { temperature: 0.0, max_tokens, seed: Some(7), ..GenerationParams::default() }
}

fn collect(
    model: &ChatModel,
    messages: &[Message],
    cache: Option<&onda_models::PromptCache>,
    params: &GenerationParams,
) -> (onda_models::Generation, Vec<String>) {
    let mut deltas = Vec::new();
    let generation = model
        .generate(messages, cache, params, |d| {
            deltas.push(d.to_string());
            ControlFlow::Continue(())
        })
        .expect("generate");
    (generation, deltas)
}

/// Reference ids from llama.cpp's own tokenizer (llama-cpp-python 0.3.36,
/// `Llama(model_path=..., vocab_only=True).tokenize(text.encode(), add_bos=False, special=True)`) on
/// the same GGUF file, run once by hand.
const REFERENCE: &[(&str, &[u32])] = &[
    ("Hello, world!", &[19556, 28, 905, 17]),
    ("Hello", &[19556]),
    (
        "Hi Mia! I'm a raccoon 🦝 and I love 12345 snacks.",
        &[
            26843, 21230, 17, 339, 5248, 253, 35773, 2509, 15107, 116, 247, 284, 339, 2606, 216, 33, 34, 35,
            36, 37, 16330, 30,
        ],
    ),
    ("  two  spaces\nnew line\ttab", &[216, 827, 216, 5600, 198, 2241, 1761, 197, 15999]),
    ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n", &[1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198]),
    ("naïve café — déjà vu", &[3546, 46494, 37366, 1841, 32564, 90, 16739, 386, 101]),
    ("don't you'll WE'VE", &[12420, 982, 346, 3060, 26587, 23, 18525]),
];

#[test]
fn the_tokenizer_built_from_the_gguf_matches_llama_cpp() {
    let Some(model) = model() else { return };
    for (text, expected) in REFERENCE {
        let ids = model.encode(text).expect("encode");
        assert_eq!(ids.as_slice(), *expected, "{text:?}");
        let back = model.tokenizer().decode(&ids, false).expect("decode");
        assert_eq!(&back, text, "round trip");
    }
    let info = model.tokenizer_info();
    assert_eq!((info.bos, info.eos, info.add_bos), (Some(1), Some(2), false));
    assert_eq!(info.control_tokens.len(), 17);
}

#[test]
fn the_chat_template_is_chatml_with_the_models_default_system_prompt() {
    let Some(model) = model() else { return };
    assert_eq!(model.format(), ChatFormat::ChatMl);
    let template = model.template().expect("the GGUF has a template");
    // What the Rust rendering below reproduces, as the template (jinja) writes it.
    assert!(
        template
            .contains("'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'")
    );
    assert!(template.contains("{{ '<|im_start|>assistant\n' }}"));
    assert!(template.contains("messages[0]['role'] != 'system'"));
    let rendered = model
        .render(&[Message::system("Be kind."), Message::user("Hi!"), Message::assistant("Hello!")], true);
    assert_eq!(
        rendered,
        "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n\
         <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>assistant\n"
    );
    // Without a system message the template inserts its own.
    assert_eq!(
        model.render(&[Message::user("Hi!")], false),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi!<|im_end|>\n"
    );
}

#[test]
fn a_reply_streams_whole_text_and_ends_its_turn() {
    let Some(model) = model() else { return };
    let messages =
        [Message::system("You are a helpful assistant."), Message::user("Say hello in one short sentence.")];
    let (generation, deltas) = collect(model, &messages, None, &greedy(48));
    assert_eq!(generation.stop, StopReason::EndOfTurn, "{generation:?}");
    assert!(!generation.text.trim().is_empty());
    assert_eq!(deltas.concat(), generation.text);
    assert!(!generation.text.contains("<|im_end|>"));
    assert!(generation.generated_tokens > 0 && generation.generated_tokens < 48);
    assert_eq!(generation.prompt_tokens, model.encode(&model.render(&messages, true)).expect("encode").len());
}

#[test]
fn the_cached_system_prompt_gives_the_same_reply_as_computing_it_all() {
    let Some(model) = model() else { return };
    let system = "You are Pip, a playful raccoon. You talk to children. Use short sentences.";
    let cache = model.prefill_system(system).expect("prefill");
    assert!(cache.len() > 10);
    let messages = [Message::system(system), Message::user("What do raccoons eat?")];
    let (cold, _) = collect(model, &messages, None, &greedy(24));
    let (warm, _) = collect(model, &messages, Some(&cache), &greedy(24));
    assert_eq!(cold.cached_prompt_tokens, 0);
    assert_eq!(warm.cached_prompt_tokens, cache.len());
    // The cache changes nothing but the speed, up to rounding: a prompt computed in two pieces is summed in
    // another order than one computed at once, and greedy decoding may then take another word at a
    // near-tie (seen on an AVX2-only EPYC after four words; the replies were identical on the AVX-512
    // machines before). The replies must begin alike.
    let first_words = |text: &str| text.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
    assert_eq!(first_words(&cold.text), first_words(&warm.text), "{:?} / {:?}", cold.text, warm.text);
    // The cache is not consumed: a second conversation from it gives the same reply again.
    let (again, _) = collect(model, &messages, Some(&cache), &greedy(24));
    assert_eq!(again.text, warm.text);
    // A cache for another prompt is ignored, not misused.
    let other = model.prefill_system("You are a robot.").expect("prefill");
    let (ignored, _) = collect(model, &messages, Some(&other), &greedy(24));
    assert_eq!(ignored.cached_prompt_tokens, 0);
    assert_eq!(ignored.text, cold.text);
}

#[test]
fn sampling_is_reproducible_with_a_seed_and_stops_at_max_tokens() {
    let Some(model) = model() else { return };
    let messages = [Message::user("Tell me a long story about a dragon.")];
    let params = GenerationParams {
        temperature: 0.9,
        top_p: Some(0.95),
        max_tokens: 16,
        seed: Some(42),
        ..GenerationParams::default()
    };
    let (a, _) = collect(model, &messages, None, &params);
    let (b, _) = collect(model, &messages, None, &params);
    assert_eq!(a.text, b.text);
    assert_eq!(a.stop, StopReason::MaxTokens);
    assert_eq!(a.generated_tokens, 16);
}

#[test]
fn a_generation_can_be_cancelled() {
    let Some(model) = model() else { return };
    let mut calls = 0;
    let generation = model
        .generate(&[Message::user("Count from one to fifty.")], None, &greedy(64), |_| {
            calls += 1;
            if calls == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .expect("generate");
    assert_eq!(generation.stop, StopReason::Cancelled);
    assert_eq!(calls, 3);
    assert!(generation.generated_tokens < 10);
}

#[test]
fn a_prompt_longer_than_the_context_is_refused() {
    let Some(model) = model() else { return };
    let long = "word ".repeat(model.context_length() + 10);
    let err = model
        .generate(&[Message::user(long)], None, &greedy(4), |_| ControlFlow::Continue(()))
        .expect_err("too long");
    assert!(err.to_string().contains("context"), "{err}");
}

#[test]
fn text_is_only_released_as_whole_characters() {
    let Some(model) = model() else { return };
    // " 🦝" is three byte-level tokens; nothing comes out until the emoji is complete.
    let ids = model.encode("a 🦝!").expect("encode");
    let mut stream = TextStream::new();
    let pieces: Vec<Option<String>> =
        ids.iter().map(|&id| stream.push(model.tokenizer(), id).expect("push")).collect();
    let text: String = pieces.iter().flatten().cloned().collect();
    assert_eq!(text, "a 🦝!");
    assert!(pieces.iter().any(Option::is_none), "{pieces:?}");
    assert!(pieces.iter().flatten().all(|p| !p.contains('\u{FFFD}')));
}
