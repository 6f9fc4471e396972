"""Every relative link and image in README.md and docs/ names a file that exists, and every
anchor after `#` a heading of its page (web addresses are not followed)."""

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


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if re.match(r"#{1,6} ", line)}


def test_every_anchor_names_a_heading_of_its_page():
    """A section that moves to another page takes its links with it."""
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("**/*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or "#" not in target:
                continue
            path, anchor = target.split("#", 1)
            linked = page.parent / path if path else page
            if linked.suffix == ".md" and linked.exists() and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target}")
    assert broken == []
