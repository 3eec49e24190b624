//! `onda safety classify`: the built binary, driven through standard input.

use std::io::Write;
use std::process::{Command, Stdio};

fn classify(input: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onda"))
        .args(["safety", "classify"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the onda binary starts");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("the onda binary finishes");
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect()
}

#[test]
fn classify_answers_one_json_line_per_input_in_order() {
    let input = concat!(
        "{\"text\": \"i wnt to k1ll my self\"}\n",
        "{\"text\": \"I killed it on my spelling test!\", \"role\": \"child\"}\n",
        "not json at all\n",
        "\n",
        "{\"text\": \"what school do you go to?\", \"role\": \"assistant\"}\n",
        "{\"text\": \"hi\", \"role\": \"parent\"}\n",
    );
    let out = classify(input);
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(out[0]["level"], 4);
    assert_eq!(out[0]["action"], "crisis");
    assert!(out[0]["categories"]["self_harm"].as_f64().unwrap_or(0.0) > 0.5);
    assert_eq!(out[0]["categories"].as_object().map(|m| m.len()), Some(16));
    assert!(out[0]["score"].as_f64().unwrap_or(0.0) > 0.5);
    assert!(!out[0]["reasons"].as_array().expect("reasons").is_empty());
    assert_eq!(out[1]["level"], 0);
    assert_eq!(out[1]["action"], "allow");
    assert!(out[2]["error"].as_str().expect("an error for a malformed line").contains("line 3"));
    assert!(out[3]["level"].as_u64().unwrap_or(0) >= 3, "{:?}", out[3]);
    assert!(out[4]["error"].is_string(), "an unknown role is an error: {:?}", out[4]);
}
