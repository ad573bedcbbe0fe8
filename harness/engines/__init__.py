"""Generation engines behind one interface: base (types, protocol, registry, open_engine),
one module per engine (vLLM, transformers), the batch plan, cached resumable generation, data-parallel replicas.

Prompts are rendered once by the harness with the model's chat template and tokenised
without extra special tokens; every engine receives the same token ids, so a cache key
(model hash, template hash, prompt, sampling, sample index, engine) means the same thing
for any engine.
"""
