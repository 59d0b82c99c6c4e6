#!/usr/bin/env python3
"""Count valkit's documented public items from rustdoc's output (run `cargo doc --all-features
--no-deps` first). Items are the entries of all.html (structs, enums, traits, functions,
constants, type aliases) plus modules, and their members: inherent methods and associated
items, public fields, enum variants, trait methods. Trait implementations are not counted.
Usage: public_items.py [target/doc/valkit] [--list]"""
import collections, os, re, sys

root = next((a for a in sys.argv[1:] if not a.startswith("--")), "target/doc/valkit")
listing = "--list" in sys.argv
html = open(os.path.join(root, "all.html")).read()
items = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', html)
mods = set()
per = collections.Counter()
members = 0
names = []
for href, name in items:
    module = name.rsplit("::", 1)[0] if "::" in name else "(root)"
    for i in range(1, name.count("::") + 1):
        mods.add("::".join(name.split("::")[:i]))
    page = open(os.path.join(root, href)).read()
    # Only the item's own section, not "Trait Implementations" and below.
    own = page.split('id="trait-implementations"')[0]
    own = own.split('id="synthetic-implementations"')[0]
    own = re.split(r'id="deref-methods', own)[0]
    own = own.split('id="blanket-implementations"')[0]
    ids = set(re.findall(r'id="((?:method|tymethod|associatedconstant|associatedtype|structfield|variant)\.[^"]+)"', own))
    members += len(ids)
    per[module] += 1 + len(ids)
    names.append(name)
    names += [f"{name}::{i.split('.', 1)[1]}" for i in sorted(ids)]
total = len(items) + len(mods) + members
print(f"items {len(items)}, modules {len(mods)}, members {members}, total {total}")
for m, n in sorted(per.items(), key=lambda x: -x[1]):
    print(f"  {m}: {n}")
if listing:
    print("\n".join(sorted(names)))
