//! Evaluation (placeholder)
