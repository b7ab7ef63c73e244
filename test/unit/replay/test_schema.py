import numpy as np
import pytest

from realrl_replay import CodecConfig, Schema, StoreConfig
from realrl_replay.synthetic import example_schema


def test_reserved_fields_are_added_and_chunks_sized_by_row_bytes():
    schema = Schema.build(example_schema(), StoreConfig())
    names = [f.name for f in schema.fields]
    assert names[-2:] == ['robot_id', 'seq']
    assert schema.by_name['obs/image_0'].chunk_rows == 32   # 2 MiB / 48 KiB -> 32
    assert schema.by_name['reward'].chunk_rows == 1024      # capped by max_chunk_rows
    assert schema.by_name['obs/image_0'].codec == StoreConfig().image_codec
    assert schema.by_name['reward'].codec == StoreConfig().small_codec
    assert schema.block_rows == 32


def test_schema_roundtrips_through_json():
    schema = Schema.build(example_schema(), StoreConfig())
    again = Schema.from_json(schema.to_json())
    assert again.fields == schema.fields


@pytest.mark.parametrize('mapping, words', [
    ({}, 'non-empty'),
    ({'x y': ((), np.float32)}, 'invalid'),
    ({'a': ((), object)}, 'bool, integer or float'),
    ({'a': ((0,), np.float32)}, '>= 1'),
    ({'a': 'nonsense'}, 'spec must be'),
    ({'robot_id': ((), np.int32)}, 'reserved'),
    ({'seq': ((), np.int32)}, 'reserved'),
    ({'obs': ((), np.float32), 'obs/x': ((), np.float32)}, 'also a group'),
])
def test_bad_schemas_are_rejected_with_the_field_named(mapping, words):
    with pytest.raises(ValueError, match=words):
        Schema.build(mapping, StoreConfig())


def test_reserved_fields_may_be_listed_compatibly():
    schema = Schema.build({'robot_id': str, 'seq': ((), np.int64), 'r': ((), np.float32)},
                          StoreConfig())
    assert [f.name for f in schema.fields] == ['r', 'robot_id', 'seq']


@pytest.mark.parametrize('kwargs, words', [
    ({'max_chunk_rows': 100}, 'power of two'),
    ({'min_chunk_rows': 64, 'max_chunk_rows': 32}, 'min_chunk_rows'),
    ({'target_chunk_bytes': 10}, 'target_chunk_bytes'),
    ({'capacity_rows': 8}, 'capacity_rows'),
])
def test_bad_store_configs_are_rejected(kwargs, words):
    with pytest.raises(ValueError, match=words):
        StoreConfig(**kwargs)


def test_bad_codec_is_rejected():
    with pytest.raises(ValueError, match='cname'):
        CodecConfig('snappy')
