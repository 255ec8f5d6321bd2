"""Evaluation: multiple-choice benchmarks (MMLU medical, MedQA, USMLE self-assessment) scored by
log-likelihood of each option, with results as JSONL, JSON and a markdown table."""
