"""Settings from `LMCORE_*` variables: defaults, every variable, bad values, yes/no words."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import pytest

from lmcore.settings import HOSTED, LimitError, Settings, get_settings

sys.path.insert(0, str(Path(__file__).parent / "app"))
from apptest import assert_no_exception, error_texts, open_page  # noqa: E402

NAMES = [f.name for f in fields(Settings)]
NUMERIC = [n for n in NAMES if type(getattr(Settings, n)) is int]
BOOLEAN = [n for n in NAMES if type(getattr(Settings, n)) is bool]
PAGES = ["streamlit_app.py"] + sorted(
    f"pages/{p.name}" for p in (Path(__file__).parents[1] / "pages").glob("[0-9]*_*.py"))


def _var(name: str) -> str:
    return f"LMCORE_{name.upper()}"


@pytest.fixture
def clean_env(monkeypatch):
    """No LMCORE_* variable set (the shared conftest sets LMCORE_HOME for every test)."""
    for name in NAMES:
        monkeypatch.delenv(_var(name), raising=False)
    return monkeypatch


def test_kinds_cover_every_field():
    assert set(NUMERIC) | set(BOOLEAN) | {"home", "llm_url", "profile"} == set(NAMES)
    assert {"upload_mb", "max_chars", "max_params", "max_steps", "max_job_seconds",
            "max_jobs"} <= set(NUMERIC)
    assert set(BOOLEAN) == {"allow_llm_url", "shared_runs"}


def test_defaults_without_any_variable(clean_env):
    s = get_settings()
    assert s == Settings(home=str(Path.home() / ".lmcore"))
    assert (s.upload_mb, s.max_chars, s.max_params, s.max_steps, s.max_job_seconds,
            s.max_jobs) == (20, 5_000_000, 20_000_000, 20_000, 1_800, 2)
    assert (s.profile, s.hosted, s.idle_seconds, s.overridden()) == ("local", False, 0, [])
    assert (s.allow_llm_url, s.shared_runs, s.llm_url) == (False, False, "")
    assert s.upload_bytes == 20 * 1024 * 1024


def test_blank_value_means_default(clean_env):
    clean_env.setenv("LMCORE_MAX_JOBS", "  ")
    clean_env.setenv("LMCORE_SHARED_RUNS", "")
    s = get_settings()
    assert (s.max_jobs, s.shared_runs) == (2, False)


@pytest.mark.parametrize("name", NUMERIC)
def test_each_numeric_variable_is_read(clean_env, name):
    value = getattr(Settings, name) + 7
    clean_env.setenv(_var(name), f" {value} ")
    s = get_settings()
    assert getattr(s, name) == value
    others = {n: getattr(s, n) for n in NUMERIC if n != name}
    assert others == {n: getattr(Settings, n) for n in NUMERIC if n != name}


@pytest.mark.parametrize("name", BOOLEAN)
def test_each_yes_no_variable_is_read(clean_env, name):
    clean_env.setenv(_var(name), "yes")
    assert getattr(get_settings(), name) is True
    assert [getattr(get_settings(), n) for n in BOOLEAN if n != name] == [False]


def test_string_variables_are_read(clean_env, tmp_path):
    clean_env.setenv("LMCORE_HOME", str(tmp_path / "runs here"))
    clean_env.setenv("LMCORE_LLM_URL", "http://127.0.0.1:8080/v1")
    s = get_settings()
    assert (s.home, s.llm_url) == (str(tmp_path / "runs here"), "http://127.0.0.1:8080/v1")


@pytest.mark.parametrize("raw", ["abc", "1.5", "20MB", "ten"])
def test_bad_numeric_value_names_the_variable(clean_env, raw):
    clean_env.setenv("LMCORE_MAX_JOBS", raw)
    with pytest.raises(ValueError) as info:
        get_settings()
    assert str(info.value) == f"LMCORE_MAX_JOBS={raw!r} is not a valid int"


@pytest.mark.parametrize("raw", ["0", "-3"])
def test_non_positive_value_is_refused(clean_env, raw):
    clean_env.setenv("LMCORE_UPLOAD_MB", raw)
    with pytest.raises(ValueError) as info:
        get_settings()
    assert str(info.value) == f"LMCORE_UPLOAD_MB must be positive, got {raw!r}"


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("YES", True), (" on ", True), ("True", True),
    ("0", False), ("false", False), ("No", False), ("off", False), (" OFF", False),
])
def test_yes_no_words(clean_env, raw, expected):
    clean_env.setenv("LMCORE_SHARED_RUNS", raw)
    clean_env.setenv("LMCORE_ALLOW_LLM_URL", raw)
    s = get_settings()
    assert (s.shared_runs, s.allow_llm_url) == (expected, expected)


@pytest.mark.parametrize("raw", ["maybe", "2", "y", "enabled"])
def test_bad_yes_no_value_names_the_variable(clean_env, raw):
    clean_env.setenv("LMCORE_ALLOW_LLM_URL", raw)
    with pytest.raises(ValueError) as info:
        get_settings()
    assert str(info.value) == f"LMCORE_ALLOW_LLM_URL={raw!r} is not a yes/no value (use 1 or 0)"


def test_check_names_the_limit_and_its_variable(clean_env):
    clean_env.setenv("LMCORE_MAX_STEPS", "100")
    s = get_settings()
    s.check("max_steps", 100)  # at the limit is allowed
    with pytest.raises(LimitError, match=r"101 exceeds the limit max_steps=100 "
                                         r"\(set LMCORE_MAX_STEPS to raise it\)"):
        s.check("max_steps", 101)


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(("var", "raw"), [("LMCORE_MAX_JOBS", "abc"),
                                          ("LMCORE_SHARED_RUNS", "maybe")])
def test_bad_variable_shows_an_error_on_every_page_not_an_exception(clean_env, path, var, raw):
    clean_env.setenv(var, raw)
    at = open_page(path)  # fails on any exception element
    assert_no_exception(at)
    errs = error_texts(at)
    assert len(errs) == 1 and f"{var}={raw!r}" in errs[0], errs
    assert "Fix or unset this environment variable" in errs[0]
    assert at.title and not at.button and not at.sidebar.markdown  # the page stopped there


# --- LMCORE_PROFILE=hosted --------------------------------------------------------------

def test_hosted_profile_sets_every_limit_for_a_small_box(clean_env):
    clean_env.setenv("LMCORE_PROFILE", " Hosted ")
    s = get_settings()
    assert s.hosted and s.profile == "hosted"
    assert {k: getattr(s, k) for k in HOSTED} == HOSTED
    # the limits of a 2-CPU / 2 GB box, each below the local default
    assert (s.upload_mb, s.max_chars, s.max_params, s.max_steps, s.max_job_seconds,
            s.max_jobs, s.idle_seconds) == (2, 1_000_000, 2_000_000, 5_000, 180, 2, 900)
    local = Settings()
    for name in ("upload_mb", "max_chars", "max_params", "max_steps", "max_job_seconds"):
        assert getattr(s, name) < getattr(local, name), name
    assert not s.allow_llm_url and not s.shared_runs
    assert s.overridden() == []
    # jobs yield the CPU to page loads on a shared server, not in a local lab
    assert (s.job_nice, local.job_nice) == (10, 0)


def test_job_niceness_lies_in_the_unix_range(clean_env):
    clean_env.setenv("LMCORE_JOB_NICE", "0")
    assert get_settings().job_nice == 0
    clean_env.setenv("LMCORE_JOB_NICE", "19")
    assert get_settings().job_nice == 19
    clean_env.setenv("LMCORE_JOB_NICE", "20")
    with pytest.raises(ValueError, match=r"LMCORE_JOB_NICE must lie in 0\.\.19"):
        get_settings()
    clean_env.setenv("LMCORE_JOB_NICE", "-5")  # raising priority would need root anyway
    with pytest.raises(ValueError, match="LMCORE_JOB_NICE must be positive"):
        get_settings()


def test_hosted_home_is_a_private_temp_folder_shared_with_child_processes(clean_env):
    clean_env.delenv("LMCORE_HOME", raising=False)
    clean_env.delenv("LMCORE_HOSTED_HOME_MADE", raising=False)
    clean_env.setenv("LMCORE_PROFILE", "hosted")
    home = Path(get_settings().home)
    try:
        assert home.is_dir() and not str(home).startswith(str(Path.home()))
        assert home.stat().st_mode & 0o777 == 0o700  # no other user reads a visitor's model
        import os
        assert os.environ["LMCORE_HOME"] == str(home)  # a job process started later agrees
        assert get_settings().home == str(home)  # made once per process
    finally:
        home.rmdir()


@pytest.mark.parametrize("name", sorted(HOSTED))
def test_an_explicit_variable_overrides_one_hosted_limit(clean_env, name):
    clean_env.setenv("LMCORE_PROFILE", "hosted")
    default = HOSTED[name]
    raw, value = ("1", True) if isinstance(default, bool) else (str(default + 3), default + 3)
    clean_env.setenv(_var(name), raw)
    s = get_settings()
    assert getattr(s, name) == value
    assert {k: getattr(s, k) for k in HOSTED if k != name} == \
        {k: v for k, v in HOSTED.items() if k != name}
    assert s.overridden() == [_var(name)]


def test_unknown_profile_names_the_choices(clean_env):
    clean_env.setenv("LMCORE_PROFILE", "public")
    with pytest.raises(ValueError) as info:
        get_settings()
    assert str(info.value) == "LMCORE_PROFILE='public' is not a profile (use local or hosted)"


def test_idle_expiry_may_be_off_but_not_negative(clean_env):
    clean_env.setenv("LMCORE_PROFILE", "hosted")
    clean_env.setenv("LMCORE_IDLE_SECONDS", "0")
    assert get_settings().idle_seconds == 0
    clean_env.setenv("LMCORE_IDLE_SECONDS", "-5")
    with pytest.raises(ValueError, match="LMCORE_IDLE_SECONDS must be positive"):
        get_settings()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_shows_the_hosted_limits_banner(clean_env, path):
    clean_env.setenv("LMCORE_PROFILE", "hosted")
    clean_env.setenv("LMCORE_MAX_JOB_SECONDS", "120")
    at = open_page(path)
    assert_no_exception(at)
    banners = [i.value for i in at.info if "Hosted demo limits" in i.value]
    assert len(banners) == 1, [i.value for i in at.info]
    text = banners[0]
    for part in ("uploads up to 2 MB", "1,000,000 characters", "2,000,000 parameters",
                 "5,000 training steps", "120 s per job", "2 job(s) at once",
                 "deleted after 15 idle minutes", "`LMCORE_MAX_JOB_SECONDS`"):
        assert part in text, (part, text)


def test_no_banner_in_the_local_profile(clean_env):
    at = open_page("streamlit_app.py")
    assert not [i.value for i in at.info if "Hosted demo limits" in i.value]


def test_job_threads_share_the_cores_among_running_jobs(monkeypatch):
    from lmcore.settings import Settings

    monkeypatch.delenv("LMCORE_JOB_THREADS", raising=False)
    s = Settings.from_env()
    assert s.job_threads == 0  # auto
    assert s.threads_per_job(cpus=2) == 2  # a lone job gets every core
    assert s.threads_per_job(cpus=2, running=2) == 1  # the second of two running: 1
    assert s.threads_per_job(cpus=1, running=2) == 1  # never 0
    assert s.threads_per_job(cpus=9, running=2) == 4
    monkeypatch.setenv("LMCORE_JOB_THREADS", "3")
    assert Settings.from_env().threads_per_job(cpus=2) == 3  # the operator's choice wins
    monkeypatch.setenv("LMCORE_JOB_THREADS", "-1")
    with pytest.raises(ValueError, match="LMCORE_JOB_THREADS"):
        Settings.from_env()
