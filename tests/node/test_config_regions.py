"""watch_regions in config.toml are checked by ISO 3166 syntax (issue 11 item 1):
a pycountry update that drops or lacks a code must never stop a node from starting,
while a malformed code is still a clear error with a suggestion."""

from __future__ import annotations

import pytest

from node.config import Config, ConfigError, validate


def test_a_well_formed_code_the_catalogue_lacks_is_accepted() -> None:
    validate(Config(name="Brigada Ejemplo", watch_regions=["MX-OAX", "XZ-QQQ"]))


def test_a_malformed_code_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"watch_regions: .*did you mean MX-OAX"):
        validate(Config(name="Brigada Ejemplo", watch_regions=["mx-oax"]))
