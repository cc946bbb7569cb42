"""shop's data directory holds password hashes (shop.db), its secret, the admin password
and emails with one-time codes: all of it is its owner's only (issue #14, item 6)."""

from __future__ import annotations

import stat
from pathlib import Path

from invariant.config import Settings
from tests.shop.conftest import serve, shop_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_fresh_data_directory_and_everything_in_it_is_the_owners_only(
        tmp_path: Path) -> None:
    data = tmp_path / "var" / "shop"
    settings = shop_settings(tmp_path, Settings(store="sqlite", sqlite_path=data / "shop.db"),
                             data=data, secret="", admin_password="")
    async with serve(settings) as server:
        await server.register("ann@example.com", "correct horse battery")  # an email
        files = [data / name for name in ("shop.db", "shop.db-wal", "shop.db-shm",
                                          "secret.key", "admin.password")]
        files += list((data / "mail").glob("*.eml"))
        assert len(files) == 6
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        directories = [tmp_path / "var", data, data / "mail"]
        assert {str(d): mode(d) for d in directories} == {str(d): 0o700 for d in directories}


async def test_the_mail_sink_makes_its_directory_again_if_it_was_removed(tmp_path: Path
                                                                        ) -> None:
    data = tmp_path / "shop"
    settings = shop_settings(tmp_path, Settings(store="sqlite", sqlite_path=data / "shop.db"),
                             data=data, secret="", admin_password="")
    async with serve(settings) as server:
        mail = data / "mail"
        mail.rmdir()  # nothing sent yet: an operator cleaned up while the shop ran
        await server.register("bob@example.com", "correct horse battery")  # an email
        await server.mail("bob@example.com", "Your shop verification code")
        emails = list(mail.glob("*.eml"))
        assert len(emails) == 1 and mode(emails[0]) == 0o600 and mode(mail) == 0o700
        assert list(mail.glob("*.partial")) == []
