"""Documents no door may let through: each with the words its refusal must contain."""

from __future__ import annotations

TEN_MIB = 10 * 1024 * 1024

# Nine levels of nine aliases: 800 bytes of text, 9**9 (387 million) values for whoever walks it.
ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
# Block style (no brackets): 200 mappings inside each other.
TOO_DEEP_YAML = "".join(f"{'  ' * level}k{level}:\n" for level in range(200)) + "  " * 200 + "end: 1\n"
TOO_DEEP_JSON = '{"a": ' * 200 + "1" + "}" * 200
MALFORMED_YAML = "metadata:\n  name: [web\nspec: {}\n"
MALFORMED_JSON = '{"metadata": {"name": "web"'

# (document text, words the refusal names)
YAML_CASES = {
    "ten MiB": ("# " + "x" * TEN_MIB + "\n", "keep it under"),
    "alias bomb": (ALIAS_BOMB, "billion laughs"),
    "too deep": (TOO_DEEP_YAML, "levels deep: flatten it"),
    "malformed": (MALFORMED_YAML, "not valid YAML or JSON at line 3"),
}
