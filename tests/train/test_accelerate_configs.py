"""The accelerate configs shipped in recipes/accelerate/: valid for accelerate, no mistyped keys.

accelerate copies each key of fsdp_config / deepspeed_config onto its launch arguments without
checking it (a typo would be ignored silently), so every key is checked against the arguments
`accelerate launch` knows.
"""

from pathlib import Path

import pytest

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "recipes" / "accelerate").glob("*.yaml"))
EXPECTED = {
    "ddp.yaml": "MULTI_GPU",
    "fsdp.yaml": "FSDP",
    "deepspeed_zero2.yaml": "DEEPSPEED",
    "deepspeed_zero3.yaml": "DEEPSPEED",
    "multi_node.yaml": "MULTI_GPU",
}


def test_every_config_is_listed():
    assert sorted(p.name for p in CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_every_key_is_a_launch_argument(path):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    config = ClusterConfig.from_yaml_file(str(path))
    assert config.distributed_type.value == EXPECTED[path.name]
    known = {action.dest for action in launch_command_parser()._actions}
    for section, prefix in (("fsdp_config", "fsdp_"), ("deepspeed_config", "")):
        for key in getattr(config, section):
            name = key if key.startswith(prefix) else prefix + key
            assert name in known, f"{path.name}: {section}.{key} is not an accelerate launch argument"
    if config.num_machines > 1:
        assert config.main_process_ip and config.main_process_port
        assert config.num_processes % config.num_machines == 0
