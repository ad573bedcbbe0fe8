"""The shipped accelerate configs pass accelerate's own loader and launch-argument validation, and the
plugin each one selects (FSDP, DeepSpeed ZeRO-3) accepts the settings it hands to the training process."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env, prepare_simple_launcher_cmd_env

from harness.config_files import find_config, packaged_dir
from harness.train.launch import DEFAULT_ACCELERATE_CONFIG, launch_command

CONFIGS = {
    "cpu.yaml": (DistributedType.NO, 1),
    "cpu-ddp.yaml": (DistributedType.MULTI_CPU, 2),
    "ddp.yaml": (DistributedType.MULTI_GPU, 8),
    "fsdp.yaml": (DistributedType.FSDP, 8),
    "deepspeed_zero3.yaml": (DistributedType.DEEPSPEED, 8),
}


def launch_args(config: Path):
    """Return `accelerate launch`'s validated arguments and config defaults for the harness command line."""
    argv = launch_command(Path("job.yaml"), config)
    parsed = launch_command_parser().parse_args(argv[argv.index("--config_file"):])
    args, defaults, mixed_precision_from_config = _validate_launch_command(parsed)
    return args, defaults, mixed_precision_from_config


def test_every_config_is_shipped_and_tested(repo_root: Path) -> None:
    assert sorted(p.name for p in (repo_root / "harness" / "configs" / "accelerate").glob("*.yaml")) == sorted(CONFIGS)
    assert find_config(DEFAULT_ACCELERATE_CONFIG).path == packaged_dir() / "accelerate" / "cpu.yaml"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_loads_and_validates_as_accelerate_launch_does(name: str, repo_root: Path) -> None:
    path = repo_root / "harness" / "configs" / "accelerate" / name
    config = load_config_from_file(str(path))
    distributed_type, processes = CONFIGS[name]
    assert (config.distributed_type, config.num_processes) == (distributed_type, processes)
    args, defaults, mixed_precision_from_config = launch_args(path)
    assert args.num_processes == processes and args.module

    if name == "cpu.yaml":
        argv, env = prepare_simple_launcher_cmd_env(args)
        assert env["ACCELERATE_USE_CPU"] == "True" and argv[1:3] == ["-m", "harness.train.run"]
    elif name == "cpu-ddp.yaml":  # accelerate's torchrun launcher starts the ranks, on a free port
        assert args.multi_gpu and not args.cpu
        prepare_multi_gpu_env(args)
        assert args.nproc_per_node == "2" and int(args.master_port) > 0
    elif name == "ddp.yaml":
        assert args.multi_gpu and prepare_multi_gpu_env(args)["ACCELERATE_MIXED_PRECISION"] == "bf16"
    elif name == "fsdp.yaml":
        with mock.patch.dict(os.environ, prepare_multi_gpu_env(args)):
            plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and plugin.state_dict_type.name == "FULL_STATE_DICT"
    else:  # DeepSpeed need not be installed: the plugin builds its config without importing it
        fields = [*defaults.deepspeed_config, *(["mixed_precision"] if mixed_precision_from_config else [])]
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = prepare_deepspeed_cmd_env(args)
        with mock.patch.dict(os.environ, env):
            plugin = DeepSpeedPlugin()
        assert plugin.zero_stage == 3 and plugin.zero3_init_flag
        assert plugin.deepspeed_config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"]
