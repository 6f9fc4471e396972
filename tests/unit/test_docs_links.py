"""Every relative link and image in README.md and docs/ names a file that exists (an anchor
after `#` is not checked; web addresses are not followed)."""

import re

from conf.settings import REPO_ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)")


def relative_links():
    for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("**/*.md"))]:
        for target in LINK.findall(page.read_text()):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#"):
                yield page, target


def test_the_pages_have_relative_links_to_check():
    assert sum(1 for _ in relative_links()) > 20


def test_every_relative_link_and_image_resolves():
    broken = [f"{page.relative_to(REPO_ROOT)}: {target}" for page, target in relative_links()
              if not (page.parent / target.split("#")[0]).exists()]
    assert broken == []
