"""Settings are typed and checked when a process starts, not when a request first needs them."""

import pytest
from pydantic import ValidationError

from digitflow.settings import PlatformSettings


@pytest.mark.parametrize(
    "values",
    [
        {"database_url": "mysql://u@h/db"},
        {"database_url": "not a url"},
        {"redis_url": "http://h:6379"},
        {"storage_backend": "s3"},
        {"job_batch_size": 0},
    ],
)
def test_bad_settings_are_refused_at_start(values):
    with pytest.raises(ValidationError):
        PlatformSettings(**values)


def test_good_settings_resolve(tmp_path):
    settings = PlatformSettings(
        data_dir=tmp_path,
        database_url="postgresql+psycopg://u:p@db/x",
        redis_url="redis://r:6379/2",
    )
    assert settings.broker_url == "redis://r:6379/2"
    assert PlatformSettings(data_dir=tmp_path).resolved_database_url.startswith("sqlite:///")


def test_whole_pages_go_in_smaller_batches_than_single_images(tmp_path):
    settings = PlatformSettings(data_dir=tmp_path, job_batch_size=500, job_page_batch_size=20)
    for layout in ("auto", "digit", "field", None):
        assert settings.batch_size_for(layout) == 500
    for layout in ("cheque", "account_slip"):  # the built-in page type, a registered one
        assert settings.batch_size_for(layout) == 20
