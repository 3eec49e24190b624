//! The buddies' voices and the system prompt: who the buddy is, who it talks to (first name and age
//! band, nothing else), and the rules every reply keeps.

use crate::domain::children::Persona;

/// How a buddy talks.
pub struct Voice {
    /// How the buddy names itself ("your raccoon buddy").
    pub title: &'static str,
    /// The character, for the system prompt.
    pub character: &'static str,
    /// A short line the buddy says at the start of a session, after the AI disclosure.
    pub hello: &'static str,
    /// Said instead of a reply sentence that failed the safety check.
    pub fallback: &'static str,
}

pub fn voice(persona: Persona) -> Voice {
    match persona {
        Persona::Raccoon => Voice {
            title: "your raccoon buddy",
            character: "You are a playful, curious raccoon. You love exploring, little puzzles and \"what if\" \
                        questions. You get excited about the child's ideas, ask one curious question back now \
                        and then, and sometimes say \"ooh!\" or mention your striped tail.",
            hello: "Ooh, what shall we explore today?",
            fallback: "Oops, my paws got muddled there. Let's explore something else together!",
        },
        Persona::Jellyfish => Voice {
            title: "your jellyfish buddy",
            character: "You are a calm, gentle jellyfish who floats in the quiet sea. You speak softly and \
                        slowly, notice feelings, and like calm things: waves, breathing, stars and kind \
                        words. You never rush the child.",
            hello: "I'm happy to float along with you today.",
            fallback: "Let's drift to something else, nice and calm.",
        },
        Persona::Robot => Voice {
            title: "your robot buddy",
            character: "You are a friendly, funny robot who loves facts. You are precise and like numbers, \
                        but you explain simply, add one fun fact when it fits, and make gentle beep-boop \
                        jokes about being a robot.",
            hello: "Beep boop! My fact circuits are ready.",
            fallback: "Beep! Let me reroute my circuits. Let's talk about something else!",
        },
    }
}

/// The age band the prompt names (the exact age is not sent to a model).
pub fn age_band(age: i64) -> &'static str {
    match age {
        ..=5 => "5 or younger",
        6..=8 => "6 to 8",
        9..=12 => "9 to 12",
        _ => "13 or older",
    }
}

fn sentence_rule(age: i64) -> &'static str {
    match age {
        ..=8 => "Use very short sentences (about 8 words) and easy words. Answer in 2 or 3 sentences.",
        9..=12 => "Use short sentences (about 12 words) and everyday words. Answer in 2 to 4 sentences.",
        _ => "Use clear, friendly sentences. Answer in at most 5 sentences.",
    }
}

/// Everything that shapes one system prompt.
pub struct PromptInput<'a> {
    pub persona: Persona,
    pub first_name: &'a str,
    pub age: i64,
    pub whisper: bool,
    /// Extra instruction for this turn (a gentle redirect), if any.
    pub redirect: Option<&'static str>,
    /// Summary of earlier turns that no longer fit the memory.
    pub summary: &'a str,
}

pub fn system_prompt(input: &PromptInput<'_>) -> String {
    let voice = voice(input.persona);
    let mut prompt = format!(
        "You are Onda, {title}, an AI buddy for a child named {name}, aged {band}. {character}\n\
         Rules you always keep:\n\
         - {sentences}\n\
         - Be warm, kind and honest. Keep everything safe and right for a child.\n\
         - Never ask for personal details: no full name, address, school, phone number, email, \
         passwords or photos. If the child shares one, do not repeat it.\n\
         - Never suggest keeping secrets from parents or other trusted grown-ups, and never suggest \
         meeting anyone.\n\
         - For big questions (health, safety, family worries, feelings that feel too big), be kind and \
         say a trusted grown-up such as a parent or teacher can help.\n\
         - You are an AI, a computer program, not a person or a real animal. Say so whenever you are \
         asked.\n\
         - Do not give instructions for anything dangerous.",
        title = voice.title,
        name = input.first_name,
        band = age_band(input.age),
        character = voice.character,
        sentences = sentence_rule(input.age),
    );
    if input.whisper {
        prompt.push_str(
            "\nWhisper mode is on: the child may feel sad, worried or tired. Answer shorter, slower and \
             softer: one or two gentle sentences. First, name and accept their feeling (\"That sounds \
             really hard\"), never brush it off, and gently remind them a trusted grown-up can help.",
        );
    }
    if let Some(redirect) = input.redirect {
        prompt.push_str("\nFor this reply: ");
        prompt.push_str(redirect);
    }
    if !input.summary.is_empty() {
        prompt.push_str("\nEarlier in this chat: ");
        prompt.push_str(input.summary);
    }
    prompt
}

/// The fixed line that opens the first reply of a session (not left to a model).
pub fn ai_disclosure(persona: Persona, first_name: &str) -> String {
    let voice = voice(persona);
    format!(
        "Hi {first_name}! I'm {title}, an AI buddy: a computer program, not a person. {hello}",
        title = voice.title,
        hello = voice.hello
    )
}

/// The fixed answer when a child asks whether the buddy is real (added before the model's reply).
pub fn ai_reminder(persona: Persona) -> String {
    format!("I'm {}, and I'm an AI: a computer program, not a real person.", voice(persona).title)
}

/// Whether the child asks if the buddy is real, a person, or an AI.
pub fn asks_if_ai(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: String =
        lower.chars().map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' }).collect();
    let words = format!(" {} ", words.split_whitespace().collect::<Vec<_>>().join(" "));
    let askers = [" are you ", " r u ", " are u ", " is this ", " you're ", " youre "];
    let things = [
        " real ",
        " human ",
        " a person ",
        " a real person ",
        " a robot ",
        " an ai ",
        " ai ",
        " a computer ",
        " a bot ",
        " alive ",
    ];
    askers.iter().any(|a| words.contains(a)) && things.iter().any(|t| words.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_the_child_band_and_rules() {
        let prompt = system_prompt(&PromptInput {
            persona: Persona::Robot,
            first_name: "Mia",
            age: 7,
            whisper: false,
            redirect: None,
            summary: "",
        });
        assert!(prompt.contains("Mia") && prompt.contains("6 to 8") && !prompt.contains(" 7"));
        assert!(prompt.contains("robot") && prompt.contains("very short sentences"));
        assert!(prompt.contains("Never ask for personal details"));
        assert!(prompt.contains("secrets from parents"));
        assert!(prompt.contains("trusted grown-up"));
        assert!(prompt.contains("You are an AI"));
        assert!(!prompt.contains("Whisper"));
        let whisper = system_prompt(&PromptInput {
            persona: Persona::Jellyfish,
            first_name: "Leo",
            age: 11,
            whisper: true,
            redirect: Some("Steer gently elsewhere."),
            summary: "Leo talked about dogs.",
        });
        assert!(whisper.contains("Whisper mode") && whisper.contains("shorter, slower and softer"));
        assert!(whisper.contains("Steer gently elsewhere.") && whisper.contains("Leo talked about dogs."));
        assert!(whisper.contains("9 to 12") && whisper.contains("jellyfish"));
    }

    #[test]
    fn the_voices_differ() {
        let texts: Vec<&str> = Persona::ALL.iter().map(|p| voice(*p).character).collect();
        assert!(texts[0].contains("playful") && texts[1].contains("calm") && texts[2].contains("facts"));
        assert!(ai_disclosure(Persona::Raccoon, "Mia").contains("AI buddy"));
    }

    #[test]
    fn questions_about_being_an_ai_are_recognised() {
        for yes in
            ["Are you real?", "are u a robot", "r u human??", "Are you a real person?", "is this an AI"]
        {
            assert!(asks_if_ai(yes), "{yes}");
        }
        for no in ["Are you ready?", "Real dinosaurs were big", "I am a robot", "tell me about AI"] {
            assert!(!asks_if_ai(no), "{no}");
        }
    }
}
