"""The training core: a TrainJob -> `accelerate launch` of a TRL script -> a trained model folder.

    job.py      TrainJob (pydantic): trainer name, weights, data files, TRL args, LoRA/QLoRA switches
    launch.py   run_training(): writes job.yaml, runs the child under harness.proc's supervisor,
                resumes from the last checkpoint, returns the compute summary
    run.py      the child script (`accelerate launch -m harness.train.run --job job.yaml`)
    checks.py   one-line refusals before training starts
    context.py  tokenizer, model, dataset, LoRA and TRL-config loaders shared by the trainers
    trainers/   one module per TRL trainer family, registered in TRAINERS by name

Training data: one JSON object per line in ``train_file`` (and ``eval_file``), conversational
(lists of {"role", "content"} messages; the policy's chat template renders them):

    sft                   {"prompt": [{"role": "user", "content": ...}],
                           "completion": [{"role": "assistant", "content": ...}]}
                          or {"messages": [...]} ending with the assistant turn (split before it);
                          loss on the completion tokens only
    dpo orpo cpo reward   {"prompt": [...], "chosen": [{"role": "assistant", ...}],
                           "rejected": [{"role": "assistant", ...}]}
    kto                   the preference format above (each pair -> a desirable and an undesirable
                          example), or unpaired {"prompt", "completion", "label": true|false}
    rloo grpo             {"prompt": [...]}; rewards come from the job's reward_model

The final model (with tokenizer) lands in <output_dir>/final, a plain transformers folder that
the engines load; for "reward" it is a one-score sequence classifier.
"""
