#!/usr/bin/env python3
"""A Salesforce-compatible HTTP test server for mailsave's Salesforce backend tests.

Standard library only, plus `cryptography` (Debian's python3-cryptography) to verify
RS256 JWT bearer assertions. See README.md next to this file for the control API.

Layout: ids, schema, errors, SOQL (tokenizer, parser, evaluator), record store, the
server state (tokens, limits, faults, log), the data API, the HTTP handler, main.
"""

import argparse
import base64
import copy
import gzip
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 10 * 1024 * 1024
MAX_URI = 16384
ORG_ID = "00D5e0000000001AAA"

# ---------------------------------------------------------------------------------------
# Ids

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID_RE = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


def case_safe_suffix(id15):
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position in range(5):
            ch = id15[chunk * 5 + position]
            if "A" <= ch <= "Z":
                bits |= 1 << position
        suffix += SUFFIX_ALPHABET[bits]
    return suffix


def make_id(prefix, number):
    digits = ""
    while True:
        digits = BASE62[number % 62] + digits
        number //= 62
        if number == 0:
            break
    id15 = prefix + "5e" + digits.rjust(10, "0")
    return id15 + case_safe_suffix(id15)


def is_id(value):
    return isinstance(value, str) and ID_RE.match(value) is not None


def to18(value):
    return value[:15] + case_safe_suffix(value[:15])


def canonical(value):
    return value[:15] if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------
# Schema: objects, fields (type, length, flags), relationships

PREFIXES = {"Account": "001", "Contact": "003", "User": "005", "Opportunity": "006", "Lead": "00Q", "Task": "00T",
            "EmailMessage": "02s", "EmailMessageRelation": "0Rb", "Case": "500"}
OBJECT_OF_PREFIX = {prefix: name for name, prefix in PREFIXES.items()}
STRING_TYPES = {"string", "textarea", "email", "phone", "url", "picklist"}


class Field:
    """A field as describe shows it. `unique` fields refuse a second record with the same value
    (`DUPLICATE_VALUE`), compared case-insensitively unless `case_sensitive`, as Salesforce does."""

    def __init__(self, name, kind="string", length=255, readonly=False, refs=(), unique=False, external_id=False,
                 case_sensitive=False):
        self.name, self.kind, self.length, self.readonly, self.refs = name, kind, length, readonly, tuple(refs)
        self.unique, self.external_id, self.case_sensitive = unique, external_id, case_sensitive


def _fields(*specs):
    out = {}
    for spec in specs:
        out[spec.name] = spec
    return out


def F(name, length=255, kind="string"):
    return Field(name, kind, length)


def B(name, readonly=False):
    return Field(name, "boolean", None, readonly)


def R(name, *refs, readonly=False):
    return Field(name, "reference", 18, readonly, refs)


def RO(name, kind="string", length=255):
    return Field(name, kind, length, True)


def SYSTEM():
    return [Field("Id", "id", 18, True), RO("CreatedDate", "datetime"), RO("LastModifiedDate", "datetime"),
            RO("SystemModstamp", "datetime"), B("IsDeleted", True), R("CreatedById", "User", readonly=True),
            R("LastModifiedById", "User", readonly=True)]


PEOPLE = ("Contact", "Lead", "User")
SCHEMA = {
    "Account": _fields(*SYSTEM(), F("Name"), F("Website"), F("Phone", 40, "phone"), F("Type", 255, "picklist"),
                       F("Industry", 255, "picklist"), F("BillingCity", 40), F("BillingCountry", 80),
                       F("Description", 32000, "textarea"), R("OwnerId", "User"), R("ParentId", "Account")),
    "Contact": _fields(*SYSTEM(), F("FirstName", 40), F("LastName", 80), RO("Name", "string", 121),
                       F("Email", 80, "email"), F("Phone", 40, "phone"), F("MobilePhone", 40, "phone"),
                       F("Title", 128), R("AccountId", "Account"), R("OwnerId", "User"),
                       F("LeadSource", 40, "picklist"), F("Description", 32000, "textarea")),
    "Lead": _fields(*SYSTEM(), F("FirstName", 40), F("LastName", 80), RO("Name", "string", 121), F("Company", 255),
                    F("Email", 80, "email"), F("Phone", 40, "phone"), F("MobilePhone", 40, "phone"), F("Title", 128),
                    F("Website", 255, "url"), F("Status", 40, "picklist"), F("LeadSource", 40, "picklist"),
                    B("IsConverted", True), R("ConvertedContactId", "Contact", readonly=True),
                    R("ConvertedAccountId", "Account", readonly=True), R("OwnerId", "User")),
    "User": _fields(*SYSTEM(), F("Username", 80), F("FirstName", 40), F("LastName", 80), RO("Name", "string", 121),
                    F("Email", 128, "email"), F("Alias", 8), B("IsActive"), F("UserType", 40, "picklist"),
                    F("Phone", 40, "phone"), F("MobilePhone", 40, "phone")),
    "Opportunity": _fields(*SYSTEM(), F("Name", 120), R("AccountId", "Account"), R("ContactId", "Contact"),
                           F("StageName", 255, "picklist"), Field("CloseDate", "date", None), B("IsClosed"),
                           B("IsWon"), Field("Amount", "double", None), R("OwnerId", "User")),
    "Case": _fields(*SYSTEM(), RO("CaseNumber", "string", 30), F("Subject", 255), F("Description", 32000, "textarea"),
                    F("Status", 40, "picklist"), B("IsClosed"), F("Origin", 40, "picklist"),
                    F("Priority", 40, "picklist"), F("SuppliedEmail", 80, "email"), R("AccountId", "Account"),
                    R("ContactId", "Contact"), R("OwnerId", "User")),
    "Task": _fields(*SYSTEM(), F("Subject", 255), F("Description", 32000, "textarea"), Field("ActivityDate", "date", None),
                    F("Status", 40, "picklist"), F("Priority", 40, "picklist"), F("TaskSubtype", 40, "picklist"),
                    F("Type", 40, "picklist"), B("IsClosed", True), R("WhoId", "Contact", "Lead"),
                    R("WhatId", "Account", "Opportunity", "Case"), R("OwnerId", "User"),
                    # As the README asks an org to define it: External ID, Unique, case-sensitive.
                    Field("Email_Message_ID__c", "string", 255, unique=True, external_id=True, case_sensitive=True)),
    "EmailMessage": _fields(*SYSTEM(), F("Subject", 3000), F("TextBody", 32000, "textarea"),
                            F("HtmlBody", 131072, "textarea"), F("FromAddress", 1000, "email"), F("FromName", 1000),
                            F("ToAddress", 4000), F("CcAddress", 4000), F("BccAddress", 4000),
                            F("Headers", 32000, "textarea"), Field("MessageDate", "datetime", None),
                            F("MessageIdentifier", 255), F("ThreadIdentifier", 255), B("Incoming"),
                            F("Status", 40, "picklist"), B("IsExternallyVisible"), R("ParentId", "Case"),
                            R("RelatedToId", "Account", "Opportunity", "Case"), R("ActivityId", "Task"),
                            R("ReplyToEmailMessageId", "EmailMessage")),
    "EmailMessageRelation": _fields(*SYSTEM(), R("EmailMessageId", "EmailMessage"), R("RelationId", *PEOPLE),
                                    F("RelationType", 40, "picklist"), F("RelationAddress", 1000, "email"),
                                    RO("RelationObjectType", "string", 40)),
}
REQUIRED = {"Account": ["Name"], "Contact": ["LastName"], "Lead": ["LastName", "Company"],
            "Opportunity": ["Name", "StageName", "CloseDate"], "User": ["LastName", "Username"],
            "EmailMessageRelation": ["EmailMessageId", "RelationId"]}
# (object, relationship) -> (foreign key field, parent object); an empty parent object means "by the id's prefix"
PARENTS = {("Contact", "Account"): ("AccountId", "Account"), ("Opportunity", "Account"): ("AccountId", "Account"),
           ("Case", "Account"): ("AccountId", "Account"), ("Case", "Contact"): ("ContactId", "Contact"),
           ("EmailMessageRelation", "EmailMessage"): ("EmailMessageId", "EmailMessage"),
           ("EmailMessage", "Parent"): ("ParentId", "Case")}
for _object, _fieldset in SCHEMA.items():
    if "OwnerId" in _fieldset:
        PARENTS[(_object, "Owner")] = ("OwnerId", "User")
# (object, child relationship) -> (child object, foreign key field)
CHILDREN = {("Account", "Contacts"): ("Contact", "AccountId"), ("Account", "Opportunities"): ("Opportunity", "AccountId"),
            ("Account", "Cases"): ("Case", "AccountId"), ("Contact", "Cases"): ("Case", "ContactId"),
            ("EmailMessage", "EmailMessageRelations"): ("EmailMessageRelation", "EmailMessageId")}
RELATION_TYPES = {"ToIds": "ToAddress", "CcIds": "CcAddress", "BccIds": "BccAddress"}


def object_name(name):
    for known in SCHEMA:
        if known.lower() == name.lower():
            return known
    return None


def field_spec(obj, name):
    fields = SCHEMA[obj]
    if name in fields:
        return fields[name]
    lowered = name.lower()
    for known, spec in fields.items():
        if known.lower() == lowered:
            return spec
    return None


def lookup_ci(mapping, obj, name):
    for (o, n), value in mapping.items():
        if o == obj and n.lower() == name.lower():
            return n, value
    return None, None


# ---------------------------------------------------------------------------------------
# Errors

class ApiError(Exception):
    """A Salesforce error answer: `[{"message", "errorCode", "fields"?}]` with an HTTP status."""

    def __init__(self, status, code, message, fields=None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self):
        item = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


def malformed(message):
    return ApiError(400, "MALFORMED_QUERY", message)


# ---------------------------------------------------------------------------------------
# SOQL tokenizer

KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
            "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "GROUP", "HAVING", "WITH", "FOR", "USING",
            "TYPEOF", "INCLUDES", "EXCLUDES"}
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2}))?")
NUMBER_RE = re.compile(r"-?\d+(\.\d+)?")
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PUNCT = ["!=", "<>", "<=", ">=", "(", ")", ",", ".", "=", "<", ">"]


class Token:
    def __init__(self, kind, value, pos, chars=None):
        # kind: ident, keyword, string, number, date, punct, end. `chars` for strings: (char, literal) pairs
        # where literal marks \_ and \% (never wildcards in LIKE).
        self.kind, self.value, self.pos, self.chars = kind, value, pos, chars

    def __repr__(self):
        return "Token(%s, %r)" % (self.kind, self.value)


def tokenize(text):
    tokens, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "'":
            start, i, chars = i, i + 1, []
            while True:
                if i >= n:
                    raise malformed("unterminated string literal starting at column %d" % (start + 1))
                ch = text[i]
                if ch == "\\":
                    escape = text[i + 1] if i + 1 < n else ""
                    if escape in ESCAPES:
                        chars.append((ESCAPES[escape], False))
                    elif escape in ("_", "%"):
                        chars.append((escape, True))
                    else:
                        raise malformed("Invalid string literal '%s'. Illegal character sequence '\\%s' in string "
                                        "literal." % (text[start + 1:i + 2], escape))
                    i += 2
                elif ch == "'":
                    i += 1
                    break
                else:
                    chars.append((ch, False))
                    i += 1
            tokens.append(Token("string", "".join(ch for ch, _ in chars), start, chars))
        else:
            match = DATE_RE.match(text, i)
            if match and not (match.end() < n and (text[match.end()].isalnum())):
                tokens.append(Token("date", match.group(0), i))
                i = match.end()
                continue
            match = NUMBER_RE.match(text, i)
            if match and (c.isdigit() or (c == "-" and i + 1 < n and text[i + 1].isdigit())):
                tokens.append(Token("number", float(match.group(0)) if "." in match.group(0) else int(match.group(0)), i))
                i = match.end()
                continue
            match = IDENT_RE.match(text, i)
            if match:
                word = match.group(0)
                kind = "keyword" if word.upper() in KEYWORDS else "ident"
                tokens.append(Token(kind, word.upper() if kind == "keyword" else word, i))
                i = match.end()
                continue
            for punct in PUNCT:
                if text.startswith(punct, i):
                    tokens.append(Token("punct", punct, i))
                    i += len(punct)
                    break
            else:
                raise malformed("unexpected character '%s' at column %d" % (c, i + 1))
    tokens.append(Token("end", None, n))
    return tokens


# ---------------------------------------------------------------------------------------
# SOQL parser: a small AST of dicts

class Parser:
    def __init__(self, text):
        self.tokens, self.index = tokenize(text), 0

    def peek(self, offset=0):
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def next(self):
        token = self.peek()
        self.index += 1
        return token

    def at(self, kind, value=None):
        token = self.peek()
        return token.kind == kind and (value is None or token.value == value)

    def accept(self, kind, value=None):
        if self.at(kind, value):
            return self.next()
        return None

    def expect(self, kind, value=None):
        if not self.at(kind, value):
            self.fail()
        return self.next()

    def fail(self):
        token = self.peek()
        shown = "EOF" if token.kind == "end" else "'%s'" % token.value
        raise malformed("unexpected token: %s at column %d" % (shown, token.pos + 1))

    def parse(self):
        query = self.query(nested=False)
        self.expect("end")
        return query

    def query(self, nested):
        self.expect("keyword", "SELECT")
        items = [self.select_item(nested)]
        while self.accept("punct", ","):
            items.append(self.select_item(nested))
        self.expect("keyword", "FROM")
        source = self.expect("ident").value
        query = {"from": source, "items": items, "where": None, "order": [], "limit": None, "offset": None}
        if self.accept("keyword", "WHERE"):
            query["where"] = self.condition()
        if self.accept("keyword", "ORDER"):
            self.expect("keyword", "BY")
            query["order"].append(self.order_item())
            while self.accept("punct", ","):
                query["order"].append(self.order_item())
        if self.accept("keyword", "LIMIT"):
            query["limit"] = self.integer()
        if self.accept("keyword", "OFFSET"):
            query["offset"] = self.integer()
        return query

    def integer(self):
        token = self.expect("number")
        if not isinstance(token.value, int) or token.value < 0:
            raise malformed("expected a non-negative integer at column %d" % (token.pos + 1))
        return token.value

    def select_item(self, nested):
        if self.at("punct", "("):
            if nested:
                self.fail()
            self.next()
            sub = self.query(nested=True)
            self.expect("punct", ")")
            return {"subquery": sub}
        return {"path": self.path()}

    def path(self):
        names = [self.expect("ident").value]
        while self.accept("punct", "."):
            names.append(self.expect("ident").value)
        return names

    def order_item(self):
        path = self.path()
        descending = False
        if self.accept("keyword", "DESC"):
            descending = True
        else:
            self.accept("keyword", "ASC")
        nulls_first = not descending
        if self.accept("keyword", "NULLS"):
            nulls_first = self.expect("keyword").value == "FIRST"
        return {"path": path, "desc": descending, "nulls_first": nulls_first}

    def condition(self):
        # SOQL forbids mixing AND and OR at one level without parentheses
        first = self.unary()
        operator = None
        operands = [first]
        while self.at("keyword", "AND") or self.at("keyword", "OR"):
            token = self.peek()
            if operator is not None and token.value != operator:
                self.fail()
            operator = token.value
            self.next()
            operands.append(self.unary())
        if operator is None:
            return first
        return {"op": operator.lower(), "operands": operands}

    def unary(self):
        if self.accept("keyword", "NOT"):
            return {"op": "not", "operand": self.unary()}
        if self.accept("punct", "("):
            inner = self.condition()
            self.expect("punct", ")")
            return inner
        return self.comparison()

    def comparison(self):
        path = self.path()
        token = self.peek()
        if token.kind == "punct" and token.value in ("=", "!=", "<>", "<", "<=", ">", ">="):
            self.next()
            op = "!=" if token.value == "<>" else token.value
            return {"op": "cmp", "path": path, "cmp": op, "value": self.literal()}
        if self.accept("keyword", "LIKE"):
            value = self.expect("string")
            return {"op": "like", "path": path, "value": value}
        negate = False
        if self.accept("keyword", "NOT"):
            negate = True
            if not self.at("keyword", "IN"):
                self.fail()
        if self.accept("keyword", "IN"):
            self.expect("punct", "(")
            if self.at("keyword", "SELECT"):
                sub = self.query(nested=True)
                self.expect("punct", ")")
                return {"op": "semijoin", "path": path, "negate": negate, "query": sub}
            values = [self.literal()]
            while self.accept("punct", ","):
                values.append(self.literal())
            self.expect("punct", ")")
            return {"op": "in", "path": path, "negate": negate, "values": values}
        self.fail()

    def literal(self):
        token = self.peek()
        if token.kind in ("string", "number", "date"):
            self.next()
            return token
        if token.kind == "keyword" and token.value in ("TRUE", "FALSE", "NULL"):
            self.next()
            return token
        self.fail()


# ---------------------------------------------------------------------------------------
# SOQL evaluator: resolve names against the schema, then filter, order and shape records

def resolve_path(obj, names):
    """Returns (steps, field): steps are (relationship, fk field, parent object) hops."""
    steps, current = [], obj
    for name in names[:-1]:
        relationship, parent = lookup_ci(PARENTS, current, name)
        if relationship is None:
            raise ApiError(400, "INVALID_FIELD", "Didn't understand relationship '%s' in field path. If you are "
                           "attempting to use a custom relationship, be sure to append the '__r'" % name)
        steps.append((relationship, parent[0], parent[1]))
        current = parent[1]
    spec = field_spec(current, names[-1])
    if spec is None:
        raise ApiError(400, "INVALID_FIELD", "No such column '%s' on entity '%s'. If you are attempting to use a "
                       "custom field, be sure to append the '__c' after the custom field name." % (names[-1], current))
    return steps, spec


def check_literal(spec, token):
    kind = spec.kind
    if token.kind == "keyword" and token.value == "NULL":
        return None
    if kind in STRING_TYPES and token.kind == "string":
        return token.value
    if kind in ("id", "reference") and token.kind == "string":
        if not is_id(token.value):
            raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: %s" % token.value)
        return canonical(token.value)
    if kind == "boolean" and token.kind == "keyword" and token.value in ("TRUE", "FALSE"):
        return token.value == "TRUE"
    if kind in ("double", "int") and token.kind == "number":
        return token.value
    if kind in ("date", "datetime") and token.kind == "date":
        return token.value
    raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", "value of filter criterion for field '%s' must be of type %s "
                   "and should not be enclosed in quotes" % (spec.name, kind) if token.kind == "string" else
                   "invalid value %r for field '%s' of type %s" % (token.value, spec.name, kind))


def like_regex(chars):
    pattern = ""
    for ch, literal in chars:
        if ch == "%" and not literal:
            pattern += ".*"
        elif ch == "_" and not literal:
            pattern += "."
        else:
            pattern += re.escape(ch)
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


def normalize(spec, value):
    """The comparable form of a stored value: text lower-cased, ids 15 characters."""
    if value is None:
        return None
    if spec.kind in ("id", "reference"):
        return canonical(value)
    if spec.kind in STRING_TYPES:
        return value.lower()
    return value


class Evaluator:
    def __init__(self, store, version):
        self.store, self.version = store, version

    # ---- compile ------------------------------------------------------------------

    def compile(self, ast, obj=None, child_of=None):
        """Checks names and literals; returns a compiled query dict."""
        if child_of is None:
            obj = object_name(ast["from"])
            if obj is None:
                raise ApiError(400, "INVALID_TYPE", "sObject type '%s' is not supported. If you are attempting to "
                               "use a custom object, be sure to append the '__c' after the entity name." % ast["from"])
        compiled = {"object": obj, "items": [], "where": None, "order": [], "limit": ast["limit"],
                    "offset": ast["offset"]}
        for item in ast["items"]:
            if "path" in item:
                steps, spec = resolve_path(obj, item["path"])
                compiled["items"].append({"steps": steps, "spec": spec})
            else:
                sub = item["subquery"]
                relationship, child = lookup_ci(CHILDREN, obj, sub["from"])
                if relationship is None:
                    raise ApiError(400, "INVALID_TYPE", "Didn't understand relationship '%s' in FROM part of query "
                                   "call. If you are attempting to use a custom relationship, be sure to append the "
                                   "'__r' after the custom relationship name." % sub["from"])
                inner = self.compile(sub, child[0], child_of=obj)
                inner["relationship"], inner["fk"] = relationship, child[1]
                compiled["items"].append({"subquery": inner})
        if ast["where"] is not None:
            compiled["where"] = self.compile_condition(obj, ast["where"])
        for order in ast["order"]:
            steps, spec = resolve_path(obj, order["path"])
            compiled["order"].append((steps, spec, order["desc"], order["nulls_first"]))
        return compiled

    def compile_condition(self, obj, node):
        op = node["op"]
        if op in ("and", "or"):
            return {"op": op, "operands": [self.compile_condition(obj, n) for n in node["operands"]]}
        if op == "not":
            return {"op": "not", "operand": self.compile_condition(obj, node["operand"])}
        steps, spec = resolve_path(obj, node["path"])
        if spec.kind == "textarea" and (spec.length or 0) > 255:
            raise ApiError(400, "INVALID_FIELD", "field '%s' can not be filtered in a query call" % spec.name)
        if op == "cmp":
            value = check_literal(spec, node["value"])
            if value is None and node["cmp"] not in ("=", "!="):
                raise malformed("null can only be compared with = or !=")
            if spec.kind == "boolean" and node["cmp"] not in ("=", "!="):
                raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on boolean field")
            return {"op": "cmp", "steps": steps, "spec": spec, "cmp": node["cmp"], "value": normalize(spec, value)
                    if spec.kind not in ("id", "reference") else value}
        if op == "like":
            if spec.kind not in STRING_TYPES:
                raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on field '%s': LIKE works on "
                               "text fields only" % spec.name)
            return {"op": "like", "steps": steps, "spec": spec, "regex": like_regex(node["value"].chars)}
        if op == "in":
            values = [check_literal(spec, token) for token in node["values"]]
            values = {normalize(spec, v) if spec.kind not in ("id", "reference") else v for v in values}
            return {"op": "in", "steps": steps, "spec": spec, "negate": node["negate"], "values": values}
        if op == "semijoin":
            if spec.kind not in ("id", "reference"):
                raise malformed("semi join sub-selects are only allowed on Id or reference fields, not '%s'"
                                % spec.name)
            sub = node["query"]
            if len(sub["items"]) != 1 or "path" not in sub["items"][0]:
                raise malformed("a semi join sub-select must select exactly one Id or reference field")
            inner = self.compile(sub)
            inner_spec = inner["items"][0]["spec"]
            if inner["items"][0]["steps"] or inner_spec.kind not in ("id", "reference"):
                raise malformed("a semi join sub-select can only select an Id or reference field")
            return {"op": "semijoin", "steps": steps, "spec": spec, "negate": node["negate"], "query": inner}
        raise malformed("unsupported condition")

    # ---- evaluate -----------------------------------------------------------------

    def value(self, record, steps, spec):
        for _, fk, parent in steps:
            target = record.get(fk)
            record = self.store.get(target) if target else None
            if record is None:
                return None
        return record.get(spec.name)

    def matches(self, record, cond, cache):
        op = cond["op"]
        if op == "and":
            return all(self.matches(record, c, cache) for c in cond["operands"])
        if op == "or":
            return any(self.matches(record, c, cache) for c in cond["operands"])
        if op == "not":
            return not self.matches(record, cond["operand"], cache)
        value = normalize(cond["spec"], self.value(record, cond["steps"], cond["spec"]))
        if op == "cmp":
            wanted, comparison = cond["value"], cond["cmp"]
            if comparison == "=":
                return value == wanted
            if comparison == "!=":
                return value != wanted
            if value is None:
                return False
            return {"<": value < wanted, "<=": value <= wanted, ">": value > wanted, ">=": value >= wanted}[comparison]
        if op == "like":
            return value is not None and cond["regex"].fullmatch(value) is not None
        if op == "in":
            return (value in cond["values"]) != cond["negate"]
        if op == "semijoin":
            key = id(cond)
            if key not in cache:
                rows = self.rows(cond["query"])
                item = cond["query"]["items"][0]
                cache[key] = {canonical(self.value(r, item["steps"], item["spec"])) for r in rows} - {None}
            return (value in cache[key]) != cond["negate"]
        raise malformed("unsupported condition")

    def rows(self, compiled, candidates=None):
        records = self.store.all(compiled["object"]) if candidates is None else candidates
        cache = {}
        if compiled["where"] is not None:
            records = [r for r in records if self.matches(r, compiled["where"], cache)]
        for steps, spec, descending, nulls_first in reversed(compiled["order"]):
            present = [r for r in records if self.value(r, steps, spec) is not None]
            absent = [r for r in records if self.value(r, steps, spec) is None]
            present.sort(key=lambda r: normalize(spec, self.value(r, steps, spec)), reverse=descending)
            records = absent + present if nulls_first else present + absent
        if compiled["offset"]:
            records = records[compiled["offset"]:]
        if compiled["limit"] is not None:
            records = records[:compiled["limit"]]
        return records

    def shape(self, compiled, record):
        obj = compiled["object"]
        out = {"attributes": self.attributes(obj, record["Id"])}
        for item in compiled["items"]:
            if "subquery" in item:
                sub = item["subquery"]
                children = [r for r in self.store.all(sub["object"]) if canonical(r.get(sub["fk"])) == canonical(record["Id"])]
                rows = self.rows(sub, children)
                out[sub["relationship"]] = {"totalSize": len(rows), "done": True,
                                            "records": [self.shape(sub, r) for r in rows]} if rows else None
                continue
            target, current, alive = out, record, True
            for relationship, fk, parent in item["steps"]:
                parent_record = self.store.get(current.get(fk)) if alive and current.get(fk) else None
                if relationship not in target or target[relationship] is None:
                    target[relationship] = None if parent_record is None else {
                        "attributes": self.attributes(self.store.object_of(parent_record["Id"]), parent_record["Id"])}
                if target[relationship] is None:
                    alive = False
                    break
                target, current = target[relationship], parent_record
            if alive:
                target[item["spec"].name] = current.get(item["spec"].name)
        return out

    def attributes(self, obj, record_id):
        return {"type": obj, "url": "/services/data/%s/sobjects/%s/%s" % (self.version, obj, record_id)}

    def run(self, soql):
        compiled = self.compile(Parser(soql).parse())
        return [self.shape(compiled, r) for r in self.rows(compiled)]


# ---------------------------------------------------------------------------------------
# Record store

def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


DATETIME_VALUE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")


def utf16_length(text):
    return len(text.encode("utf-16-le")) // 2


class Store:
    """Records by object, keyed by 18-character id. Callers hold the server lock."""

    def __init__(self):
        self.objects = {name: {} for name in SCHEMA}
        self.counter = 0
        self.case_number = 1000
        self.deleted = set()

    def snapshot(self):
        return copy.deepcopy((self.objects, self.counter, self.case_number, self.deleted))

    def restore(self, snapshot):
        self.objects, self.counter, self.case_number, self.deleted = snapshot

    def object_of(self, record_id):
        return OBJECT_OF_PREFIX.get(record_id[:3]) if isinstance(record_id, str) else None

    def get(self, record_id):
        if not is_id(record_id):
            return None
        obj = self.object_of(record_id)
        return self.objects[obj].get(to18(record_id)) if obj else None

    def all(self, obj):
        return list(self.objects[obj].values())

    def new_id(self, obj):
        while True:
            self.counter += 1
            candidate = make_id(PREFIXES[obj], self.counter)
            if candidate not in self.objects[obj] and candidate not in self.deleted:
                return candidate

    def validate(self, obj, body, creating, seeding=False):
        """Checks a create or update body; returns the canonical field dict."""
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object for the record")
        fields = {}
        for key, value in body.items():
            if key == "attributes" or (key in RELATION_TYPES and obj == "EmailMessage" and creating):
                continue
            spec = field_spec(obj, key)
            if spec is None:
                raise ApiError(400, "INVALID_FIELD", "No such column '%s' on sobject of type %s" % (key, obj))
            if spec.readonly and not seeding:
                raise ApiError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: %s. Please "
                               "check the security settings of this field and verify that it is read/write for your "
                               "profile or permission set." % spec.name, [spec.name])
            fields[spec.name] = self.check_value(obj, spec, value, seeding)
        if creating and not seeding:
            missing = [name for name in REQUIRED.get(obj, []) if fields.get(name) in (None, "")]
            if missing:
                raise ApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]" % ", ".join(missing),
                               missing)
            # A Lead has no Account: an activity on a Lead relates to nothing else.
            if obj in ("Task", "Event") and fields.get("WhatId") and fields.get("WhoId") \
                    and self.object_of(fields["WhoId"]) == "Lead":
                raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "Related To ID: an activity whose Name is a Lead cannot "
                               "be related to a record", ["WhatId"])
        return fields

    def check_value(self, obj, spec, value, seeding):
        if value is None:
            return None
        kind = spec.kind
        wrong = ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of %s from %s value %s for field %s"
                         % (kind, type(value).__name__, json.dumps(value)[:80], spec.name))
        if kind == "boolean":
            if not isinstance(value, bool):
                raise wrong
            return value
        if kind == "double":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise wrong
            return value
        if not isinstance(value, str):
            raise wrong
        if kind in ("id", "reference"):
            if not is_id(value):
                raise ApiError(400, "MALFORMED_ID", "%s: id value of incorrect type: %s" % (spec.name, value), [spec.name])
            value = to18(value)
            if not seeding and kind == "reference":
                target_object = self.object_of(value)
                if target_object not in spec.refs:
                    raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "%s: id value of incorrect type: %s"
                                   % (spec.name, value), [spec.name])
                if self.get(value) is None:
                    raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [spec.name])
            return value
        if kind == "date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of date from VALUE_STRING value %s"
                           % value)
        if kind == "datetime" and not DATETIME_VALUE_RE.fullmatch(value):
            raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of datetime from VALUE_STRING "
                           "value %s" % value)
        if spec.length is not None and not seeding and utf16_length(value) > spec.length:
            shown = value if len(value) <= 100 else value[:100] + "..."
            raise ApiError(400, "STRING_TOO_LONG", "%s: data value too large: %s (max length=%d)"
                           % (spec.name, shown, spec.length), [spec.name])
        return value

    def derive(self, obj, record, explicit):
        """Computed and defaulted fields, as Salesforce fills them."""
        if obj in PEOPLE:
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p) or None
        if obj == "Case":
            if not record.get("CaseNumber"):
                self.case_number += 1
                record["CaseNumber"] = "%08d" % self.case_number
            record.setdefault("Status", "New")
            if "IsClosed" not in explicit:
                record["IsClosed"] = record.get("Status") == "Closed"
        if obj == "Opportunity":
            stage = record.get("StageName") or ""
            if "IsClosed" not in explicit:
                record["IsClosed"] = stage.startswith("Closed")
            if "IsWon" not in explicit:
                record["IsWon"] = stage == "Closed Won"
        if obj == "Lead":
            record.setdefault("IsConverted", False)
            record.setdefault("Status", "Open - Not Contacted")
        if obj == "Task":
            record.setdefault("Status", "Not Started")
            record.setdefault("Priority", "Normal")
            if "IsClosed" not in explicit:
                record["IsClosed"] = record.get("Status") == "Completed"
        if obj == "User":
            record.setdefault("IsActive", True)
            record.setdefault("UserType", "Standard")
        if obj == "EmailMessageRelation" and record.get("RelationId"):
            record["RelationObjectType"] = self.object_of(record["RelationId"])

    def check_unique(self, obj, fields, record_id=None):
        """DUPLICATE_VALUE, in Salesforce's words and shape, when a unique field's value is taken."""
        for name, value in fields.items():
            spec = SCHEMA[obj].get(name)
            if spec is None or not spec.unique or value in (None, ""):
                continue
            wanted = value if spec.case_sensitive else str(value).lower()
            for other in self.objects[obj].values():
                held = other.get(name)
                if other["Id"] == record_id or held in (None, ""):
                    continue
                if (held if spec.case_sensitive else str(held).lower()) == wanted:
                    raise ApiError(400, "DUPLICATE_VALUE", "duplicate value found: %s duplicates value on record with id: %s"
                                   % (name, other["Id"][:15]), [])

    def insert(self, obj, body, owner_id=None, seeding=False):
        fields = self.validate(obj, body, creating=True, seeding=seeding)
        if not seeding:
            self.check_unique(obj, fields)
        record_id = fields.pop("Id", None)
        if record_id:
            if self.object_of(record_id) != obj:
                raise ApiError(400, "MALFORMED_ID", "Id %s is not a %s id" % (record_id, obj), ["Id"])
        else:
            record_id = self.new_id(obj)
        stamp = now_iso()
        record = {"Id": record_id, "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
                  "IsDeleted": False, "CreatedById": owner_id, "LastModifiedById": owner_id}
        if "OwnerId" in SCHEMA[obj]:
            record["OwnerId"] = owner_id
        record.update({k: v for k, v in fields.items() if v is not None})
        self.derive(obj, record, fields)
        for name in SCHEMA[obj]:
            record.setdefault(name, None)
        self.objects[obj][record_id] = record
        self.deleted.discard(record_id)
        if obj == "EmailMessage" and not seeding:
            self.relate_email(record, body)
        return record_id

    def relate_email(self, email, body):
        """ToIds/CcIds/BccIds make EmailMessageRelation rows; FromAddress matches a User, Contact or Lead by Email."""
        for key, relation_type in RELATION_TYPES.items():
            ids = body.get(key) or []
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ApiError(400, "JSON_PARSER_ERROR", "%s must be an array of ids" % key)
            for related in ids:
                person = self.get(related)
                if person is None or self.object_of(related) not in PEOPLE:
                    raise ApiError(400, "INVALID_ID_FIELD", "%s: invalid id %s" % (key, related), [key])
                self.add_relation(email["Id"], person, relation_type)
        sender = (email.get("FromAddress") or "").lower()
        if sender:
            for obj in ("User", "Contact", "Lead"):
                found = [r for r in self.all(obj) if (r.get("Email") or "").lower() == sender]
                if found:
                    self.add_relation(email["Id"], found[0], "FromAddress", email.get("FromAddress"))
                    break

    def add_relation(self, email_id, person, relation_type, address=None):
        record_id = self.new_id("EmailMessageRelation")
        stamp = now_iso()
        record = {name: None for name in SCHEMA["EmailMessageRelation"]}
        record.update({"Id": record_id, "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
                       "IsDeleted": False, "EmailMessageId": email_id, "RelationId": person["Id"],
                       "RelationType": relation_type, "RelationAddress": address or person.get("Email"),
                       "RelationObjectType": self.object_of(person["Id"])})
        self.objects["EmailMessageRelation"][record_id] = record

    def update(self, obj, record_id, body):
        record = self.require(obj, record_id)
        fields = self.validate(obj, body, creating=False)
        if obj == "EmailMessage" and record.get("Status") not in (None, "5"):
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "You can only edit an EmailMessage whose Status is "
                           "Draft (5)", list(fields))
        for name in REQUIRED.get(obj, []):
            if name in fields and fields[name] in (None, ""):
                raise ApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]" % name, [name])
        self.check_unique(obj, fields, record["Id"])
        record.update(fields)
        record["LastModifiedDate"] = record["SystemModstamp"] = now_iso()
        self.derive(obj, record, fields)

    def delete(self, obj, record_id):
        record = self.require(obj, record_id)
        del self.objects[obj][record["Id"]]
        self.deleted.add(record["Id"])
        if obj == "EmailMessage":
            for relation in self.all("EmailMessageRelation"):
                if relation["EmailMessageId"] == record["Id"]:
                    del self.objects["EmailMessageRelation"][relation["Id"]]
                    self.deleted.add(relation["Id"])

    def require(self, obj, record_id):
        if not is_id(record_id) or self.object_of(record_id) != obj:
            raise ApiError(404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: %s"
                           % record_id)
        if to18(record_id) in self.deleted:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        record = self.objects[obj].get(to18(record_id))
        if record is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return record

    def dump(self):
        records = []
        for obj, rows in self.objects.items():
            for record in rows.values():
                records.append(dict({"attributes": {"type": obj}}, **record))
        return {"records": records, "counter": self.counter, "case_number": self.case_number,
                "deleted": sorted(self.deleted)}

    def load(self, data):
        for record in data.get("records", []):
            obj = object_name(((record.get("attributes") or {}).get("type")) or "")
            if obj is None:
                raise ApiError(400, "INVALID_TYPE", "record without a known attributes.type")
            body = {k: v for k, v in record.items() if v is not None}
            self.insert(obj, body, seeding=True)
        self.counter = max(self.counter, data.get("counter", 0))
        self.case_number = max(self.case_number, data.get("case_number", 0))
        self.deleted |= set(data.get("deleted", []))


# ---------------------------------------------------------------------------------------
# Server state: configuration, tokens, API usage, faults, the request log

FAULT_KINDS = {"status", "error_code", "expire_session", "request_limit", "slow", "malformed", "drop_after_commit",
               "drop_before"}
STATUS_CODES = {400: "BAD_REQUEST", 401: "INVALID_SESSION_ID", 403: "REQUEST_LIMIT_EXCEEDED", 404: "NOT_FOUND",
                429: "REQUEST_LIMIT_EXCEEDED", 500: "UNKNOWN_EXCEPTION", 502: "SERVER_UNAVAILABLE",
                503: "SERVER_UNAVAILABLE", 504: "SERVER_UNAVAILABLE"}
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
COMPOSITE_MAX = 25
COMPOSITE_QUERY_MAX = 5
HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class State:
    def __init__(self, args, public_key):
        self.lock = threading.RLock()
        self.public_key = public_key
        self.client_id, self.client_secret = args.client_id, args.client_secret
        self.username, self.refresh_token = args.username, args.refresh_token
        self.batch_size, self.token_lifetime = args.batch_size, args.token_lifetime
        self.api_max, self.api_used = args.daily_limit, 0
        self.soql_max, self.uri_max = 100000, MAX_URI
        self.state_file = args.state
        self.port = 0
        self.tokens = {}
        self.faults = []
        self.locators = {}
        self.reset()
        if self.state_file and os.path.exists(self.state_file):
            with open(self.state_file) as handle:
                data = json.load(handle)
            self.store = Store()
            self.store.load(data)
            self.api_used = data.get("api_used", 0)
            self.user_id = data.get("user_id") or self.user_id

    def reset(self):
        self.store = Store()
        self.user_id = self.store.insert("User", {"Username": self.username, "Email": self.username,
                                                  "FirstName": "Integration", "LastName": "User", "Alias": "integ"},
                                         seeding=True)
        self.log, self.faults, self.locators = [], [], {}
        self.logins = self.api_calls = self.api_used = 0
        self.by_path, self.by_kind = {}, {}
        self.sequence = 0

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def save(self):
        if not self.state_file:
            return
        data = self.store.dump()
        data.update({"api_used": self.api_used, "user_id": self.user_id})
        temporary = self.state_file + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(data, handle)
        os.replace(temporary, self.state_file)

    # ---- faults ---------------------------------------------------------------------

    def add_fault(self, fault):
        kind = fault.get("kind")
        if kind not in FAULT_KINDS:
            raise ApiError(400, "INVALID_INPUT", "unknown fault kind %r; expected one of %s"
                           % (kind, ", ".join(sorted(FAULT_KINDS))))
        fault = dict(fault)
        fault.setdefault("times", 1)
        fault.setdefault("match", "")
        if kind == "expire_session" and not fault["match"]:
            self.tokens.clear()
            return
        self.faults.append(fault)

    def take_fault(self, kinds, text, extra=None):
        """The first armed fault of `kinds` whose match is in `text` (or in `extra`, when given), consumed once."""
        for fault in self.faults:
            if fault["kind"] not in kinds:
                continue
            if fault["match"] in text or (extra is not None and fault["match"] in extra):
                if fault["times"]:
                    fault["times"] -= 1
                    if fault["times"] == 0:
                        self.faults.remove(fault)
                return fault
        return None

    # ---- tokens ---------------------------------------------------------------------

    def issue_token(self):
        token = "%s!%s" % (ORG_ID[:15], secrets.token_urlsafe(48))
        self.tokens[token] = time.time() + self.token_lifetime
        self.logins += 1
        issued = str(int(time.time() * 1000))
        identity = "%s/id/%s/%s" % (self.base_url, ORG_ID, self.user_id)
        key = (self.client_secret or self.client_id).encode()
        signature = base64.b64encode(hmac.new(key, (identity + issued).encode(), hashlib.sha256).digest()).decode()
        return {"access_token": token, "signature": signature, "scope": "api", "instance_url": self.base_url,
                "id": identity, "token_type": "Bearer", "issued_at": issued}

    def token_valid(self, token):
        expiry = self.tokens.get(token)
        if expiry is None:
            return False
        if expiry < time.time():
            del self.tokens[token]
            return False
        return True


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OAuthError(Exception):
    def __init__(self, error, description, status=400):
        super().__init__(description)
        self.status, self.body = status, {"error": error, "error_description": description}


def oauth_token(state, form):
    grant = form.get("grant_type", "")
    if grant == JWT_GRANT:
        verify_jwt(state, form.get("assertion", ""))
    elif grant == "refresh_token":
        if form.get("client_id") != state.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        secret = form.get("client_secret")
        if secret is not None and state.client_secret is not None and secret != state.client_secret:
            raise OAuthError("invalid_client", "invalid client credentials")
        if state.refresh_token is None or form.get("refresh_token") != state.refresh_token:
            raise OAuthError("invalid_grant", "expired access/refresh token")
    elif grant == "client_credentials":
        if form.get("client_id") != state.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if state.client_secret is None or form.get("client_secret") != state.client_secret:
            raise OAuthError("invalid_client", "invalid client credentials")
    else:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    return state.issue_token()


def verify_jwt(state, assertion):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    parts = assertion.split(".")
    if len(parts) != 3:
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, TypeError):
        raise OAuthError("invalid_grant", "invalid assertion")
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
        raise OAuthError("invalid_grant", "invalid assertion: the header's alg must be RS256")
    if state.public_key is None:
        raise OAuthError("invalid_grant", "invalid assertion: no certificate uploaded for this connected app")
    try:
        state.public_key.verify(signature, (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise OAuthError("invalid_grant", "invalid assertion: signature does not verify")
    if claims.get("iss") != state.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    audiences = {state.base_url, state.base_url + "/", "http://localhost:%d" % state.port,
                 "https://login.salesforce.com", "https://test.salesforce.com"}
    if claims.get("aud") not in audiences:
        raise OAuthError("invalid_grant", "audience is invalid")
    if claims.get("sub") != state.username:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    expiry, now = claims.get("exp"), time.time()
    if not isinstance(expiry, (int, float)) or isinstance(expiry, bool):
        raise OAuthError("invalid_grant", "invalid assertion: exp missing")
    if expiry < now - 5:
        raise OAuthError("invalid_grant", "expired authorization code")
    if expiry > now + 180 + 10:
        raise OAuthError("invalid_grant", "invalid assertion: exp is more than 3 minutes in the future")


# ---------------------------------------------------------------------------------------
# Data API: one operation (sobject, query), composite, graph, collections

VERSION_RE = re.compile(r"^/services/data/(v\d+\.\d)(/.*)?$")
REFERENCE_RE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


class Response:
    def __init__(self, status, body=None, headers=None):
        self.status, self.body, self.headers = status, body, headers or {}


def error_response(error):
    return Response(error.status, error.body())


def split_url(url):
    """`/services/data/v66.0/query?q=..` -> (version, rest path without leading slash, params dict)."""
    parts = urllib.parse.urlsplit(url)
    match = VERSION_RE.match(parts.path)
    if not match:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    params = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
    return match.group(1), (match.group(2) or "/").strip("/"), params


def soql_of(url):
    try:
        _, rest, params = split_url(url)
    except ApiError:
        return None
    if rest.split("/")[0] in ("query", "queryAll") and "q" in params:
        return params["q"]
    return None


def is_query_url(url):
    try:
        _, rest, _ = split_url(url)
    except ApiError:
        return False
    return rest.split("/")[0] in ("query", "queryAll")


class DataAPI:
    """Answers data requests; callers hold the state lock."""

    def __init__(self, state):
        self.state = state
        self.store = state.store

    # ---- one operation ----------------------------------------------------------------

    def operation(self, method, url, body, top_path, batch=None):
        """A plain request or a composite subrequest; raises ApiError on failure."""
        soql = soql_of(url) or ""
        fault = self.state.take_fault({"error_code"}, url + "\n" + soql,
                                      top_path if method != "GET" else None)
        if fault is not None:
            raise ApiError(fault.get("status", 400), fault.get("code") or fault.get("error_code") or "UNABLE_TO_LOCK_ROW",
                           fault.get("message") or "unable to obtain exclusive access to this record or 1 records", [])
        version, rest, params = split_url(url)
        segments = rest.split("/") if rest else []
        head = segments[0] if segments else ""
        if head in ("query", "queryAll") and method == "GET":
            if len(segments) == 1:
                if "q" not in params:
                    raise malformed("a q parameter is required")
                return Response(200, self.query(params["q"], version, batch))
            if len(segments) == 2:
                return Response(200, self.query_more(segments[1], version, batch))
        if head == "sobjects":
            return self.sobjects(method, segments[1:], params, body, version)
        if rest == "composite/sobjects":
            return self.collection(method, params, body, version, top_path)
        if head == "limits" and method == "GET":
            return Response(200, {"DailyApiRequests": {"Max": self.state.api_max,
                                                       "Remaining": max(0, self.state.api_max - self.state.api_used)}})
        if head == "" and method == "GET":
            return Response(200, {"composite": "/services/data/%s/composite" % version,
                                  "query": "/services/data/%s/query" % version,
                                  "sobjects": "/services/data/%s/sobjects" % version,
                                  "limits": "/services/data/%s/limits" % version})
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def query(self, soql, version, batch=None):
        if len(soql) > self.state.soql_max:
            raise malformed("SOQL statements can not be longer than %d characters (this one is %d: too long)"
                            % (self.state.soql_max, len(soql)))
        rows = Evaluator(self.store, version).run(soql)
        return self.page(rows, version, 0, batch, None)

    def query_more(self, cursor, version, batch=None):
        locator, _, offset = cursor.rpartition("-")
        if locator not in self.state.locators or not offset.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self.page(self.state.locators[locator], version, int(offset), batch, locator)

    def page(self, rows, version, start, batch, locator):
        size = min(self.state.batch_size, batch or self.state.batch_size)
        end = start + size
        result = {"totalSize": len(rows), "done": end >= len(rows)}
        if end < len(rows):
            if locator is None:
                locator = make_id("01g", len(self.state.locators) + 1)
                self.state.locators[locator] = rows
            result["nextRecordsUrl"] = "/services/data/%s/query/%s-%d" % (version, locator, end)
        result["records"] = rows[start:end]
        return result

    def sobjects(self, method, segments, params, body, version):
        if not segments:
            if method == "GET":
                return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200,
                                      "sobjects": [self.describe_brief(o) for o in SCHEMA]})
            raise ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are GET" % method)
        obj = object_name(segments[0])
        if obj is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if len(segments) == 1:
            if method == "POST":
                record_id = self.store.insert(obj, body if body is not None else {}, owner_id=self.state.user_id)
                return Response(201, {"id": record_id, "success": True, "errors": []},
                                {"Location": "/services/data/%s/sobjects/%s/%s" % (version, obj, record_id)})
            if method == "GET":
                return Response(200, {"objectDescribe": self.describe_brief(obj), "recentItems": []})
        elif len(segments) == 2 and segments[1] == "describe" and method == "GET":
            return Response(200, self.describe(obj))
        elif len(segments) == 2:
            record_id = segments[1]
            if method == "GET":
                record = self.store.require(obj, record_id)
                names = [n.strip() for n in params["fields"].split(",")] if params.get("fields") else list(SCHEMA[obj])
                out = {"attributes": {"type": obj, "url": "/services/data/%s/sobjects/%s/%s" % (version, obj, record["Id"])}}
                for name in names:
                    spec = field_spec(obj, name)
                    if spec is None:
                        raise ApiError(400, "INVALID_FIELD", "No such column '%s' on entity '%s'" % (name, obj))
                    out[spec.name] = record.get(spec.name)
                return Response(200, out)
            if method == "PATCH":
                self.store.update(obj, record_id, body if body is not None else {})
                return Response(204)
            if method == "DELETE":
                self.store.delete(obj, record_id)
                return Response(204)
        raise ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed here" % method)

    def describe_brief(self, obj):
        return {"name": obj, "label": obj, "keyPrefix": PREFIXES[obj], "queryable": True, "createable": True,
                "updateable": True, "deletable": True, "custom": False}

    def describe(self, obj):
        out = self.describe_brief(obj)
        out["fields"] = [{"name": s.name, "type": s.kind, "length": s.length or 0, "createable": not s.readonly,
                          "updateable": not s.readonly, "nillable": s.name not in REQUIRED.get(obj, []),
                          "referenceTo": list(s.refs), "unique": s.unique, "externalId": s.external_id,
                          "idLookup": s.name == "Id" or s.external_id, "caseSensitive": s.case_sensitive,
                          "custom": s.name.endswith("__c")} for s in SCHEMA[obj].values()]
        out["childRelationships"] = [{"relationshipName": rel, "childSObject": child, "field": fk}
                                     for (o, rel), (child, fk) in CHILDREN.items() if o == obj]
        return out

    # ---- composite --------------------------------------------------------------------

    def composite(self, body, top_path):
        requests = self.subrequests(body, "compositeRequest")
        if len(requests) > COMPOSITE_MAX:
            return limit_exceeded("The request can’t contain more than %d operations." % COMPOSITE_MAX)
        if sum(1 for r in requests if is_query_url(str(r.get("url", "")))) > COMPOSITE_QUERY_MAX:
            return limit_exceeded("The request can’t contain more than %d query operations." % COMPOSITE_QUERY_MAX)
        responses = self.run_subrequests(requests, bool(body.get("allOrNone")), top_path)[0]
        return Response(200, {"compositeResponse": responses})

    def subrequests(self, body, key):
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be an object with a %s array" % key)
        seen = set()
        for request in body[key]:
            if not isinstance(request, dict) or not all(isinstance(request.get(k), str)
                                                        for k in ("method", "url", "referenceId")):
                raise ApiError(400, "INVALID_INPUT", "Each subrequest needs a method, url and referenceId")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]*", request["referenceId"]):
                raise ApiError(400, "INVALID_INPUT", "Invalid referenceId %r" % request["referenceId"])
            if request["referenceId"] in seen:
                raise ApiError(400, "INVALID_INPUT", "Duplicate referenceId %r" % request["referenceId"])
            seen.add(request["referenceId"])
        return body[key]

    def run_subrequests(self, requests, all_or_none, top_path):
        snapshot = self.store.snapshot() if all_or_none else None
        results, responses, failed = {}, [], False
        for request in requests:
            reference = request["referenceId"]
            if all_or_none and failed:
                responses.append(halted(reference, HALTED))
                continue
            try:
                url = substitute(request["url"], results, in_url=True)
                body = substitute(request.get("body"), results)
                response = self.operation(request["method"].upper(), url, body, top_path)
            except ApiError as error:
                response = error_response(error)
            if response.status >= 400:
                failed = True
            else:
                results[reference] = response.body
            responses.append({"body": response.body, "httpHeaders": response.headers,
                              "httpStatusCode": response.status, "referenceId": reference})
        if all_or_none and failed:
            self.store.restore(snapshot)
            for item in responses:
                if item["httpStatusCode"] < 400:
                    item.update(halted(item["referenceId"], HALTED))
        return responses, not failed

    def graph(self, body, top_path):
        if not isinstance(body, dict) or not isinstance(body.get("graphs"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be an object with a graphs array")
        graphs = []
        for graph in body["graphs"]:
            if not isinstance(graph, dict) or not isinstance(graph.get("graphId"), str):
                raise ApiError(400, "INVALID_INPUT", "Each graph needs a graphId")
            requests = self.subrequests(graph, "compositeRequest")
            if len(requests) > 500:
                raise ApiError(400, "LIMIT_EXCEEDED", "A graph can't contain more than 500 nodes.")
            responses, ok = self.run_subrequests(requests, True, top_path)
            graphs.append({"graphId": graph["graphId"], "graphResponse": {"compositeResponse": responses},
                           "isSuccessful": ok})
        return Response(200, {"graphs": graphs})

    def collection(self, method, params, body, version, top_path):
        if method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be an object with a records array")
            records, all_or_none = body["records"], bool(body.get("allOrNone"))
        elif method == "DELETE":
            records = [i for i in params.get("ids", "").split(",") if i]
            all_or_none = params.get("allOrNone", "false").lower() == "true"
        else:
            raise ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed here" % method)
        if len(records) > 200:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records "
                           "into this call")
        snapshot = self.store.snapshot() if all_or_none else None
        results, failed = [], False
        for record in records:
            try:
                obj = None
                if method == "POST":
                    obj = object_name(((record.get("attributes") or {}).get("type") or "")
                                      if isinstance(record, dict) else "")
                    if obj is None:
                        raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.", [])
                else:
                    obj = self.store.object_of(record) if is_id(record) else None
                    if obj is None:
                        raise ApiError(400, "MALFORMED_ID", "malformed id %s" % record, [])
                fault = self.state.take_fault({"error_code"}, "composite/sobjects %s" % obj, top_path)
                if fault is not None:
                    raise ApiError(400, fault.get("code") or "UNABLE_TO_LOCK_ROW",
                                   fault.get("message") or "unable to obtain exclusive access to this record", [])
                if method == "POST":
                    fields = {k: v for k, v in record.items() if k != "attributes"}
                    results.append({"id": self.store.insert(obj, fields, owner_id=self.state.user_id),
                                    "success": True, "errors": []})
                else:
                    try:
                        self.store.delete(obj, record)
                    except ApiError as error:
                        if error.code == "NOT_FOUND":
                            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
                        raise
                    results.append({"id": to18(record), "success": True, "errors": []})
            except ApiError as error:
                failed = True
                results.append({"success": False, "errors": [{"statusCode": error.code, "message": error.message,
                                                              "fields": error.fields or []}]})
        if all_or_none and failed:
            self.store.restore(snapshot)
            for result in results:
                if result["success"]:
                    result.clear()
                    result.update({"success": False, "errors": [{
                        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "fields": [],
                        "message": "Record rolled back because not all records were valid and the request was "
                                   "using AllOrNone header"}]})
        return Response(200, results)


def limit_exceeded(message):
    return Response(400, {"compositeResponse": [{"body": [{"errorCode": "LIMIT_EXCEEDED", "message": message}],
                                                 "httpHeaders": {}, "httpStatusCode": 400, "referenceId": None}]})


def halted(reference, message):
    return {"body": [{"errorCode": "PROCESSING_HALTED", "message": message}], "httpHeaders": {},
            "httpStatusCode": 400, "referenceId": reference}


def reference_value(results, reference, path):
    if reference not in results:
        raise ApiError(400, "PROCESSING_HALTED", "Invalid reference specified. No value for %s%s found in %s. "
                       "Provided referenceId ('%s') must start with a letter or a number, and it can contain only "
                       "letters, numbers and underscores ('_')." % (reference, path, reference, reference))
    value = results[reference]
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        name, index = step
        try:
            value = value[name] if name else value[int(index)]
        except (KeyError, IndexError, TypeError):
            raise ApiError(400, "PROCESSING_HALTED", "Invalid reference specified. No value for %s%s found in %s."
                           % (reference, path, reference))
    return value


def substitute(value, results, in_url=False):
    """Replaces `@{ref.path}` references in strings (recursively through JSON bodies)."""
    if isinstance(value, str):
        whole = REFERENCE_RE.fullmatch(value)
        if whole and not in_url:
            return reference_value(results, whole.group(1), whole.group(2))

        def replace(match):
            found = reference_value(results, match.group(1), match.group(2))
            text = json.dumps(found) if isinstance(found, (bool, dict, list)) or found is None else str(found)
            return urllib.parse.quote(text, safe="") if in_url and "?" in value[:match.start()] else text
        return REFERENCE_RE.sub(replace, value)
    if isinstance(value, list):
        return [substitute(v, results) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, results) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------
# HTTP handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSalesforce/1.0"

    def do_GET(self):
        self.handle_request()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = do_GET

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("fake-salesforce: %s\n" % (format % args))

    @property
    def state(self):
        return self.server.state

    # ---- plumbing -------------------------------------------------------------------

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ApiError(413, "REQUEST_ENTITY_TOO_LARGE", "The request body is larger than 10 MB")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            data = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ApiError(413, "REQUEST_ENTITY_TOO_LARGE", "The request body is larger than 10 MB")
            data = self.rfile.read(length) if length else b""
        if data and self.headers.get("Content-Encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def send(self, status, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        headers = dict(headers or {})
        if data and len(data) > 200 and "gzip" in self.headers.get("Accept-Encoding", "").lower():
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        if data:
            headers.setdefault("Content-Type", "application/json;charset=UTF-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def drop(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- dispatch -------------------------------------------------------------------

    def handle_request(self):
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        try:
            raw_body = self.read_body()
        except ApiError as error:
            self.close_connection = True
            return self.send(error.status, error.body())
        except (ValueError, OSError):
            self.close_connection = True
            return self.send(400, [{"message": "unreadable request body", "errorCode": "BAD_REQUEST"}])
        if path.startswith("/__control/"):
            return self.control(path[len("/__control/"):], parts.query, raw_body)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
        if path == "/services/oauth2/token":
            return self.oauth(path, params, raw_body)
        if path.startswith("/services/data"):
            return self.data(path, parts.query, params, raw_body)
        self.send(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

    def log_entry(self, path, params, body, soql):
        with self.state.lock:
            self.state.sequence += 1
            entry = {"seq": self.state.sequence, "time": now_iso(), "method": self.command, "path": path,
                     "query": params, "soql": soql, "body": body, "status": None}
            self.state.log.append(entry)
            if len(self.state.log) > 10000:
                del self.state.log[:1000]
            self.state.by_path[path] = self.state.by_path.get(path, 0) + 1
        return entry

    def http_faults(self, entry, text, oauth=False):
        """Applies transport faults; returns (answered, drop_after_commit)."""
        state = self.state
        # One delay a request (a `slow` fault armed until cleared must not delay it forever).
        with state.lock:
            slow = state.take_fault({"slow"}, text)
        if slow is not None:
            time.sleep(float(slow.get("seconds", 1)))
        with state.lock:
            fault = state.take_fault({"status", "request_limit", "malformed", "drop_before", "drop_after_commit",
                                      "expire_session"}, text)
            if fault is not None and fault["kind"] == "expire_session":
                state.tokens.clear()
                fault = None
        if fault is None:
            return False, False
        kind = fault["kind"]
        if kind == "drop_after_commit":
            return False, True
        entry["fault"] = kind
        if kind == "drop_before":
            entry["status"] = "dropped"
            self.drop()
            return True, False
        if kind == "malformed":
            entry["status"] = 200
            self.send(200, raw=b"<html><body>Service Unavailable: this is not JSON", headers=self.limit_header())
            return True, False
        status = 403 if kind == "request_limit" else int(fault.get("status", 503))
        entry["status"] = status
        if oauth:
            self.send(status, {"error": fault.get("code") or "unknown_error",
                               "error_description": fault.get("message") or "retry your request"})
            return True, False
        code = fault.get("code") or ("REQUEST_LIMIT_EXCEEDED" if kind == "request_limit" else
                                     STATUS_CODES.get(status, "UNKNOWN_EXCEPTION"))
        message = fault.get("message") or {"REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
                                           "INVALID_SESSION_ID": "Session expired or invalid",
                                           "SERVER_UNAVAILABLE": "Server unavailable; try again later"
                                           }.get(code, "An unexpected error occurred. Please try again.")
        self.send(status, [{"message": message, "errorCode": code}], self.limit_header())
        return True, False

    def limit_header(self):
        return {"Sforce-Limit-Info": "api-usage=%d/%d" % (self.state.api_used, self.state.api_max)}

    def oauth(self, path, params, raw_body):
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw_body.decode("utf-8", "replace"),
                                                            keep_blank_values=True).items()}
        form = dict(params, **form)
        shown = {k: (v if k in ("grant_type", "client_id") else "***") for k, v in form.items()}
        entry = self.log_entry(path, {}, shown, [])
        with self.state.lock:
            self.state.by_kind["token"] = self.state.by_kind.get("token", 0) + 1
        answered, drop_after = self.http_faults(entry, path + "\n" + form.get("grant_type", ""), oauth=True)
        if answered:
            return
        if self.command != "POST":
            entry["status"] = 405
            return self.send(405, {"error": "invalid_request", "error_description": "must use HTTP POST"})
        with self.state.lock:
            try:
                body, status = oauth_token(self.state, form), 200
            except OAuthError as error:
                body, status = error.body, error.status
        entry["status"] = status
        if drop_after:
            entry["status"] = "dropped after commit"
            return self.drop()
        self.send(status, body, {"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"})

    def data(self, path, query, params, raw_body):
        state = self.state
        body, body_error = None, None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError as error:
                body_error = ApiError(400, "JSON_PARSER_ERROR", "Unexpected content in the JSON body: %s" % error)
        soql = self.soql_in(path, query, body)
        entry = self.log_entry(path, params, body if body_error is None else raw_body.decode("utf-8", "replace"), soql)
        decoded_query = urllib.parse.unquote_plus(query)
        answered, drop_after = self.http_faults(entry, path + "?" + decoded_query + "\n" + "\n".join(soql + self.subrequests_in(body)))
        if answered:
            return
        response = self.data_response(path, query, params, body, body_error, entry)
        entry["status"] = response.status
        if drop_after:
            entry["status"] = "dropped after commit"
            return self.drop()
        headers = dict(response.headers)
        if response.status == 401:
            headers["WWW-Authenticate"] = "Token"
        with state.lock:
            headers.update(self.limit_header())
        self.send(response.status, response.body, headers)

    @staticmethod
    def subrequests_in(body):
        """`METHOD url` of each composite subrequest, so a fault can match a save (`POST .../sobjects/Task`)."""
        lines = []
        graphs = body.get("graphs") if isinstance(body, dict) else None
        groups = [body] + (graphs if isinstance(graphs, list) else []) if isinstance(body, dict) else []
        for group in groups:
            requests = group.get("compositeRequest") if isinstance(group, dict) else None
            for request in requests if isinstance(requests, list) else []:
                if isinstance(request, dict):
                    lines.append("%s %s" % (request.get("method", ""), request.get("url", "")))
        return lines

    def soql_in(self, path, query, body):
        texts = []
        text = soql_of(path + "?" + query)
        if text is not None:
            texts.append(text)
        graphs = body.get("graphs") if isinstance(body, dict) else None
        groups = [body] + (graphs if isinstance(graphs, list) else []) if isinstance(body, dict) else []
        for group in groups:
            requests = group.get("compositeRequest") if isinstance(group, dict) else None
            for request in requests if isinstance(requests, list) else []:
                text = soql_of(str(request.get("url", ""))) if isinstance(request, dict) else None
                if text is not None:
                    texts.append(text)
        return texts

    def data_response(self, path, query, params, body, body_error, entry):
        state = self.state
        authorization = self.headers.get("Authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        method = self.command
        with state.lock:
            if not state.token_valid(token):
                return Response(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
            state.api_calls += 1
            state.api_used += 1
            if state.api_used > state.api_max:
                return Response(403, [{"message": "TotalRequests Limit exceeded.",
                                       "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
            if path == "/services/data" or path == "/services/data/":
                return Response(200, [{"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"}])
            if len(self.path) > state.uri_max:
                return Response(414, [{"message": "The request URI is longer than %d bytes" % state.uri_max,
                                       "errorCode": "URI_TOO_LONG"}])
            if body_error is not None:
                return error_response(body_error)
            api = DataAPI(state)
            try:
                version, rest, _ = split_url(path)
                kind = self.kind_of(rest)
                state.by_kind[kind] = state.by_kind.get(kind, 0) + 1
                if rest == "composite" and method == "POST":
                    response = api.composite(body, path)
                elif rest == "composite/graph" and method == "POST":
                    response = api.graph(body, path)
                elif rest == "composite/sobjects":
                    response = api.collection(method, params, body, version, path)
                else:
                    batch = None
                    match = re.search(r"batchSize=(\d+)", self.headers.get("Sforce-Query-Options", ""))
                    if match:
                        batch = max(1, int(match.group(1)))
                    response = api.operation(method, path + ("?" + query if query else ""), body, path, batch)
            except ApiError as error:
                response = error_response(error)
            if method != "GET":
                state.save()
            return response

    @staticmethod
    def kind_of(rest):
        head = rest.split("/")[0]
        if head in ("query", "queryAll"):
            return "query_more" if "/" in rest else "query"
        if rest.startswith("composite"):
            return rest.replace("/", "_")
        return head or "root"

    # ---- control API ------------------------------------------------------------------

    def control(self, name, query, raw_body):
        state = self.state
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        try:
            body = json.loads(raw_body) if raw_body else {}
        except ValueError:
            return self.send(400, {"error": "the body is not JSON"})
        method = self.command
        try:
            with state.lock:
                result = self.control_action(method, name, params, body)
        except ApiError as error:
            return self.send(error.status, {"error": error.message, "errorCode": error.code})
        if result is None:
            return self.send(404, {"error": "unknown control endpoint %s %s" % (method, name)})
        self.send(200, result)
        if name == "shutdown":
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    def control_action(self, method, name, params, body):
        state = self.state
        if (method, name) == ("POST", "records"):
            records = body.get("records")
            if not isinstance(records, list):
                raise ApiError(400, "INVALID_INPUT", "expected {\"records\": [...]}")
            ids = []
            snapshot = state.store.snapshot()
            try:
                for record in records:
                    obj = object_name(((record.get("attributes") or {}).get("type")) or "") \
                        if isinstance(record, dict) else None
                    if obj is None:
                        raise ApiError(400, "INVALID_TYPE", "each record needs attributes.type naming a known object")
                    ids.append(state.store.insert(obj, record, seeding=True))
            except ApiError:
                state.store.restore(snapshot)
                raise
            state.save()
            return {"ids": ids}
        if (method, name) == ("GET", "records"):
            wanted = params.get("type")
            objects = [object_name(wanted)] if wanted else list(SCHEMA)
            if None in objects:
                raise ApiError(400, "INVALID_TYPE", "unknown type %s" % wanted)
            return {"records": [dict({"attributes": {"type": o}}, **r) for o in objects for r in state.store.all(o)]}
        if (method, name) == ("POST", "reset"):
            tokens = state.tokens
            state.reset()
            state.tokens = tokens
            state.save()
            return {"ok": True}
        if (method, name) == ("GET", "log"):
            return {"requests": state.log}
        if (method, name) == ("POST", "log/clear"):
            state.log = []
            return {"ok": True}
        if (method, name) == ("GET", "stats"):
            return {"api_calls": state.api_calls, "logins": state.logins, "by_path": state.by_path,
                    "by_kind": state.by_kind, "api_usage": {"used": state.api_used, "max": state.api_max},
                    "active_tokens": len(state.tokens)}
        if (method, name) == ("POST", "fault"):
            faults = body.get("faults") if isinstance(body.get("faults"), list) else [body]
            for fault in faults:
                state.add_fault(fault)
            return {"faults": state.faults}
        if (method, name) == ("GET", "fault"):
            return {"faults": state.faults}
        if (method, name) == ("POST", "fault/clear"):
            state.faults = []
            return {"ok": True}
        if (method, name) == ("POST", "limits"):
            state.api_used = int(body.get("used", state.api_used))
            state.api_max = int(body.get("max", state.api_max))
            return {"used": state.api_used, "max": state.api_max}
        if (method, name) == ("POST", "soql-limit"):
            state.soql_max = int(body.get("max_length", 100000))
            return {"max_length": state.soql_max}
        if (method, name) == ("POST", "config"):
            for key, kind in (("batch_size", int), ("token_lifetime", float), ("uri_max", int)):
                if key in body:
                    setattr(state, key, kind(body[key]))
            return {"batch_size": state.batch_size, "token_lifetime": state.token_lifetime, "uri_max": state.uri_max}
        if (method, name) == ("POST", "fields"):
            obj = object_name(str(body.get("object", "")))
            if obj is None or not isinstance(body.get("fields"), list):
                raise ApiError(400, "INVALID_INPUT", "expected {\"object\": \"Contact\", \"fields\": [...]}")
            for field in body["fields"]:
                if isinstance(field, str) and field_spec(obj, field) is not None:
                    continue  # a bare name adds a field; one that exists stays as it is
                field = {"name": field} if isinstance(field, str) else field
                kind = field.get("type", "string")
                spec = Field(field["name"], kind, field.get("length", 255 if kind in STRING_TYPES else None),
                             bool(field.get("readonly")), field.get("referenceTo", ()), bool(field.get("unique")),
                             bool(field.get("externalId")), bool(field.get("caseSensitive")))
                SCHEMA[obj][spec.name] = spec
                for record in state.store.all(obj):
                    record.setdefault(spec.name, None)
            return {"fields": sorted(SCHEMA[obj])}
        if (method, name) == ("POST", "expire-tokens"):
            state.tokens.clear()
            return {"ok": True}
        if (method, name) == ("POST", "shutdown"):
            return {"ok": True}
        return None


# ---------------------------------------------------------------------------------------
# main

def load_public_key(path):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

    with open(path, "rb") as handle:
        data = handle.read()
    if b"CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    if b"PRIVATE KEY" in data:
        return load_pem_private_key(data, password=None).public_key()
    return load_pem_public_key(data)


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description="A Salesforce-compatible test server (see README.md).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--public-key", help="PEM public key, certificate or private key verifying JWT assertions")
    parser.add_argument("--client-id", default="test-client")
    parser.add_argument("--client-secret")
    parser.add_argument("--username", default="sync@example.com")
    parser.add_argument("--refresh-token")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--token-lifetime", type=float, default=3600)
    parser.add_argument("--daily-limit", type=int, default=15000)
    parser.add_argument("--state", help="JSON file the records are loaded from and saved to after every write")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def make_server(args):
    """A bound server (not yet serving); its state is `server.state`."""
    public_key = load_public_key(args.public_key) if args.public_key else None
    state = State(args, public_key)
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state, server.verbose = state, args.verbose
    state.port = server.server_address[1]
    return server


def main(argv=None):
    import signal

    args = parse_arguments(argv)
    server = make_server(args)
    state = server.state

    def terminate(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    sys.stdout.write("LISTENING %d\n" % state.port)
    sys.stdout.flush()
    sys.stderr.write("fake-salesforce: listening on %s (client id %s, user %s)\n"
                     % (state.base_url, args.client_id, args.username))
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        with state.lock:
            state.save()
        server.server_close()


if __name__ == "__main__":
    main()
