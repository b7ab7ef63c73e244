from dataclasses import dataclass, field

import pytest

from realrl_common.config import ConfigError, build_config, check, config_to_dict


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    sizes: tuple[int, ...] = (64, 64)


@dataclass(frozen=True)
class Outer:
    name: str = 'x'
    rate: float = 10.0
    enabled: bool = True
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self):
        check(self.rate > 0, f'rate must be > 0, got {self.rate}')


def test_builds_nested_and_coerces_ints_to_floats():
    cfg = build_config(Outer, {'rate': 5, 'inner': {'sizes': [8, 16]}})
    assert cfg.rate == 5.0 and isinstance(cfg.rate, float)
    assert cfg.inner.sizes == (8, 16)
    assert config_to_dict(cfg)['inner']['sizes'] == [8, 16]


def test_unknown_key_names_key_and_suggests_the_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'rat'; did you mean 'rate'"):
        build_config(Outer, {'rat': 3})


def test_unknown_nested_key_names_its_path():
    with pytest.raises(ConfigError, match=r"unknown key 'inner.lrr'"):
        build_config(Outer, {'inner': {'lrr': 1}})


@pytest.mark.parametrize('values, message', [
    ({'rate': 'fast'}, r'rate: expected a number'),
    ({'enabled': 'yes'}, r'enabled: expected true or false'),
    ({'name': 3}, r'name: expected a string'),
    ({'inner': {'sizes': 'abc'}}, r'inner.sizes: expected a list of int'),
    ({'inner': {'sizes': [1, 2.5]}}, r'sizes\[1\]: expected an integer'),
    ({'rate': True}, r'rate: expected a number'),
])
def test_wrong_types_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(Outer, values, where='node /x')


def test_value_checks_of_the_class_become_config_errors_with_location():
    with pytest.raises(ConfigError, match=r'^node /x: rate must be > 0, got -1.0'):
        build_config(Outer, {'rate': -1}, where='node /x')


@dataclass(frozen=True)
class WithOptional:
    target: float | None = None


def test_optional_fields_accept_none_and_values():
    assert build_config(WithOptional, {}).target is None
    assert build_config(WithOptional, {'target': 2}).target == 2.0
    with pytest.raises(ConfigError, match='target: expected a number'):
        build_config(WithOptional, {'target': 'x'})
