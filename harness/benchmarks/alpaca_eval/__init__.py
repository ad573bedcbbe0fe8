"""AlpacaEval 2.0 on the alpaca_eval library: loaders (the eval set), annotator (configs),
requests (judge prompts and parsing), metrics, outputs (model_outputs.json and published
runs) and the pipeline stages."""
