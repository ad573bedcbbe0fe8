"""MT-Bench (FastChat llm_judge single-answer grading): loaders, protocol, rating parser,
answer files and the pipeline stages."""
