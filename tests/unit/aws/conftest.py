"""The moto RDS source instance every RDS test starts from."""

from __future__ import annotations

import pytest

from tests.unit.aws.aws_proxy import aws_proxy  # noqa: F401 - a fixture
from tests.unit.aws.source_instance import SourceInstance, make_source


@pytest.fixture
def source(aws) -> SourceInstance:
    return make_source(aws)
