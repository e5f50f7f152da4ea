"""Tests of the fake Salesforce server itself: python3 -m unittest discover -s Tests/FakeSalesforce"""

import base64
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fake_salesforce as fs  # noqa: E402

V = "/services/data/v66.0"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(key, claims, alg="RS256"):
    signing_input = b64url(json.dumps({"alg": alg}).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(signature)


def write_public_key(directory):
    path = os.path.join(directory, "public.pem")
    with open(path, "wb") as handle:
        handle.write(KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


class Answer:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw

    @property
    def json(self):
        return json.loads(self.raw)

    def header(self, name):
        return self.headers.get(name.lower())


class ServerTest(unittest.TestCase):
    extra_args = []

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.TemporaryDirectory()
        args = fs.parse_arguments(["--port", "0", "--public-key", write_public_key(cls.directory.name),
                                   "--client-secret", "s3cret", "--refresh-token", "refresh-1"] + cls.extra_args)
        cls.server = fs.make_server(args)
        cls.port = cls.server.state.port
        cls.thread = threading.Thread(target=cls.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.directory.cleanup()

    def setUp(self):
        self.control("POST", "reset")
        self.control("POST", "config", {"batch_size": 2, "token_lifetime": 3600})
        self.control("POST", "limits", {"used": 0, "max": 15000})
        self.control("POST", "soql-limit", {"max_length": 100000})
        self.token = self.login()

    # ---- helpers ------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, raw=None, token=True):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = dict(headers or {})
        if token and path.startswith("/services/data"):
            headers["Authorization"] = "Bearer " + (self.token if token is True else token)
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            if response.getheader("Content-Encoding") == "gzip":
                payload = gzip.decompress(payload)
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
        finally:
            connection.close()

    def control(self, method, name, body=None):
        answer = self.request(method, "/__control/" + name, body)
        self.assertEqual(answer.status, 200, answer.raw)
        return answer.json

    def token_request(self, **form):
        return self.request("POST", "/services/oauth2/token", raw=urllib.parse.urlencode(form).encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})

    def login(self):
        answer = self.token_request(grant_type="client_credentials", client_id="test-client", client_secret="s3cret")
        self.assertEqual(answer.status, 200, answer.raw)
        return answer.json["access_token"]

    def seed(self, *records):
        return self.control("POST", "records", {"records": list(records)})["ids"]

    def records(self, object_type):
        return self.control("GET", "records?type=" + object_type)["records"]

    def query(self, soql, token=True):
        return self.request("GET", V + "/query?q=" + urllib.parse.quote(soql), token=token)

    def rows(self, soql):
        answer = self.query(soql)
        self.assertEqual(answer.status, 200, answer.raw)
        return answer.json["records"]

    def all_rows(self, soql):
        answer = self.query(soql)
        self.assertEqual(answer.status, 200, answer.raw)
        page, rows = answer.json, []
        while True:
            rows += page["records"]
            if page["done"]:
                return rows
            page = self.request("GET", page["nextRecordsUrl"]).json

    def assertError(self, answer, status, code):
        self.assertEqual(answer.status, status, answer.raw)
        self.assertEqual(answer.json[0]["errorCode"], code, answer.raw)
        return answer.json[0]

    def composite(self, requests, all_or_none=False):
        answer = self.request("POST", V + "/composite", {"allOrNone": all_or_none, "compositeRequest": requests})
        return answer

    def jwt(self, key=KEY, **overrides):
        claims = {"iss": "test-client", "sub": "sync@example.com", "aud": "http://127.0.0.1:%d" % self.port,
                  "exp": int(time.time()) + 120}
        claims.update(overrides)
        return self.token_request(grant_type=fs.JWT_GRANT, assertion=make_jwt(key, claims))


class IdTests(unittest.TestCase):
    def test_ids_have_prefix_instance_and_case_safe_suffix(self):
        self.assertEqual(fs.make_id("003", 1), "0035e0000000001AAA")
        self.assertEqual(fs.make_id("001", 62), "0015e0000000010AAA")
        self.assertEqual(fs.case_safe_suffix("001D000000IRFma"), "IAH")

    def test_soql_tokenizer_escapes(self):
        token = fs.tokenize(r"'a\'b\\c\"d\n\%\_'")[0]
        self.assertEqual(token.value, "a'b\\c\"d\n%_")
        self.assertEqual([literal for _, literal in token.chars][-2:], [True, True])


class OAuthTests(ServerTest):
    def test_jwt_bearer_good(self):
        answer = self.jwt()
        self.assertEqual(answer.status, 200, answer.raw)
        body = answer.json
        self.assertEqual(body["instance_url"], "http://127.0.0.1:%d" % self.port)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertNotIn("refresh_token", body)
        self.assertEqual(self.query("SELECT Id FROM User", token=body["access_token"]).status, 200)

    def test_jwt_accepts_login_urls_as_audience(self):
        self.assertEqual(self.jwt(aud="https://login.salesforce.com").status, 200)
        self.assertEqual(self.jwt(aud="https://test.salesforce.com").status, 200)

    def test_jwt_failures(self):
        cases = [(self.jwt(key=OTHER_KEY), "invalid_grant"), (self.jwt(exp=int(time.time()) - 60), "invalid_grant"),
                 (self.jwt(exp=int(time.time()) + 600), "invalid_grant"), (self.jwt(aud="https://evil.example"),
                                                                           "invalid_grant"),
                 (self.jwt(sub="someone@example.com"), "invalid_grant"), (self.jwt(iss="other"), "invalid_client_id")]
        for answer, error in cases:
            self.assertEqual(answer.status, 400, answer.raw)
            self.assertEqual(answer.json["error"], error, answer.raw)
            self.assertIn("error_description", answer.json)
        signing_input = b64url(b'{"alg":"HS256"}') + "." + b64url(b'{"iss":"test-client"}')
        answer = self.token_request(grant_type=fs.JWT_GRANT, assertion=signing_input + ".AAAA")
        self.assertEqual(answer.json["error"], "invalid_grant")
        self.assertEqual(self.token_request(grant_type=fs.JWT_GRANT, assertion="garbage").status, 400)

    def test_refresh_token_flow(self):
        answer = self.token_request(grant_type="refresh_token", refresh_token="refresh-1", client_id="test-client")
        self.assertEqual(answer.status, 200, answer.raw)
        self.assertNotIn("refresh_token", answer.json)
        answer = self.token_request(grant_type="refresh_token", refresh_token="wrong", client_id="test-client")
        self.assertEqual((answer.status, answer.json["error"]), (400, "invalid_grant"))
        answer = self.token_request(grant_type="refresh_token", refresh_token="refresh-1", client_id="test-client",
                                    client_secret="bad")
        self.assertEqual(answer.json["error"], "invalid_client")

    def test_client_credentials_flow(self):
        answer = self.token_request(grant_type="client_credentials", client_id="test-client", client_secret="bad")
        self.assertEqual((answer.status, answer.json["error"]), (400, "invalid_client"))
        answer = self.token_request(grant_type="password", client_id="test-client")
        self.assertEqual(answer.json["error"], "unsupported_grant_type")

    def test_logins_are_counted(self):
        before = self.control("GET", "stats")["logins"]
        self.login()
        self.jwt()
        self.assertEqual(self.control("GET", "stats")["logins"], before + 2)

    def test_expired_and_unknown_tokens(self):
        self.assertError(self.query("SELECT Id FROM User", token="nope"), 401, "INVALID_SESSION_ID")
        self.control("POST", "config", {"token_lifetime": 0})
        token = self.login()
        time.sleep(0.05)
        answer = self.query("SELECT Id FROM User", token=token)
        self.assertError(answer, 401, "INVALID_SESSION_ID")
        self.assertEqual(answer.json[0]["message"], "Session expired or invalid")


class QueryTests(ServerTest):
    def setUp(self):
        super().setUp()
        self.account, self.other_account = self.seed(
            {"attributes": {"type": "Account"}, "Name": "Acme", "Website": "https://www.acme.com"},
            {"attributes": {"type": "Account"}, "Name": "Empty Co"})
        self.contacts = self.seed(
            {"attributes": {"type": "Contact"}, "LastName": "O'Brien", "Email": "o'brien@x.com", "AccountId": self.account},
            {"attributes": {"type": "Contact"}, "LastName": "Back", "Email": "a\\b@x.com"},
            {"attributes": {"type": "Contact"}, "LastName": "Plain", "FirstName": "Pat", "Email": "Pat@Example.com",
             "AccountId": self.account},
            {"attributes": {"type": "Contact"}, "LastName": "Under", "Email": "a_b@x.com"},
            {"attributes": {"type": "Contact"}, "LastName": "Percent", "Email": "100%@x.com"})
        self.cases = self.seed({"attributes": {"type": "Case"}, "Subject": "Broken", "ContactId": self.contacts[2],
                                "AccountId": self.account})

    def emails(self, where):
        return sorted(r["Email"] for r in self.all_rows("SELECT Email FROM Contact WHERE " + where))

    def test_escapes_and_injection_are_literals(self):
        self.assertEqual(self.emails(r"Email = 'o\'brien@x.com'"), ["o'brien@x.com"])
        self.assertEqual(self.emails(r"Email = 'a\\b@x.com'"), ["a\\b@x.com"])
        self.assertEqual(self.emails(r"Email = 'x\' OR Name LIKE \'%'"), [])
        self.assertEqual(self.emails(r"Email IN ('x\' OR Email != \'', 'pat@example.com')"), ["Pat@Example.com"])

    def test_malformed_literals(self):
        self.assertError(self.query("SELECT Id FROM Contact WHERE Email = 'o'brien@x.com'"), 400, "MALFORMED_QUERY")
        self.assertError(self.query(r"SELECT Id FROM Contact WHERE Email = 'a\c@x.com'"), 400, "MALFORMED_QUERY")
        self.assertError(self.query("SELECT Id FROM Contact WHERE Email = 'a\\'"), 400, "MALFORMED_QUERY")
        self.assertError(self.query("SELECT Id FROM Contact WHERE Email = 'open"), 400, "MALFORMED_QUERY")
        self.assertError(self.query("SELECT Id FROM Contact WHERE Email = 'a' AND Id != null OR Email = 'b'"),
                         400, "MALFORMED_QUERY")
        self.assertError(self.query("SELECT Id FROM Contact WHERE Email = :bind"), 400, "MALFORMED_QUERY")
        self.assertError(self.query("SELECT Id FROM Contact GROUP BY Email"), 400, "MALFORMED_QUERY")

    def test_unknown_names(self):
        self.assertError(self.query("SELECT Nope FROM Contact"), 400, "INVALID_FIELD")
        self.assertError(self.query("SELECT Id FROM Nope"), 400, "INVALID_TYPE")
        self.assertError(self.query("SELECT Nope.Name FROM Contact"), 400, "INVALID_FIELD")
        self.assertError(self.query("SELECT Id, (SELECT Id FROM Nopes) FROM Account"), 400, "INVALID_TYPE")
        self.assertError(self.query("SELECT Id FROM Contact WHERE IsDeleted = 'false'"), 400,
                         "INVALID_QUERY_FILTER_OPERATOR")
        self.assertError(self.query("SELECT Id FROM Contact WHERE Id = 'bogus'"), 400, "INVALID_QUERY_FILTER_OPERATOR")
        self.assertError(self.query("SELECT Id FROM Task WHERE Description LIKE '%x%'"), 400, "INVALID_FIELD")

    def test_like_and_case_insensitivity(self):
        self.assertEqual(self.emails("Email = 'PAT@EXAMPLE.COM'"), ["Pat@Example.com"])
        self.assertEqual(self.emails("Email LIKE '%@x.com' AND LastName LIKE 'O%'"), ["o'brien@x.com"])
        self.assertEqual(self.emails("Email LIKE 'a_b@x.com'"), ["a\\b@x.com", "a_b@x.com"])
        self.assertEqual(self.emails(r"Email LIKE 'a\_b@x.com'"), ["a_b@x.com"])
        self.assertEqual(self.emails(r"Email LIKE '%\%%'"), ["100%@x.com"])
        self.assertEqual(self.emails("NOT Email LIKE '%@x.com'"), ["Pat@Example.com"])
        self.assertEqual(self.emails("Email NOT IN ('a_b@x.com') AND (LastName = 'back' OR LastName = 'under')"),
                         ["a\\b@x.com"])

    def test_nulls_booleans_and_ids(self):
        self.assertEqual(len(self.all_rows("SELECT Id FROM Contact WHERE AccountId = null")), 3)
        self.assertEqual(len(self.all_rows("SELECT Id FROM Contact WHERE AccountId != null AND IsDeleted = false")), 2)
        self.assertEqual(self.rows("SELECT Id FROM Contact WHERE Id = '%s'" % self.contacts[0][:15])[0]["Id"],
                         self.contacts[0])
        self.assertEqual(len(self.rows("SELECT Id FROM Contact WHERE Id IN ('%s', '%s')"
                                       % (self.contacts[0], self.contacts[1][:15]))), 2)

    def test_pagination(self):
        answer = self.query("SELECT Id, Email FROM Contact ORDER BY Email")
        first = answer.json
        self.assertEqual((first["totalSize"], first["done"], len(first["records"])), (5, False, 2))
        self.assertRegex(first["nextRecordsUrl"], r"^/services/data/v66\.0/query/01g\w+-2$")
        rows = self.all_rows("SELECT Id, Email FROM Contact ORDER BY Email")
        self.assertEqual(len(rows), 5)
        self.assertEqual([r["Email"] for r in rows], sorted((r["Email"] for r in rows), key=str.lower))
        self.assertEqual(self.control("GET", "stats")["by_kind"]["query_more"], 2)
        self.assertError(self.request("GET", V + "/query/01gBOGUS-2"), 400, "INVALID_QUERY_LOCATOR")
        self.assertEqual(len(self.rows("SELECT Id FROM Contact LIMIT 1")), 1)
        answer = self.request("GET", V + "/query?q=" + urllib.parse.quote("SELECT Id FROM Contact"),
                              headers={"Sforce-Query-Options": "batchSize=1"})
        self.assertEqual(len(answer.json["records"]), 1)

    def test_parent_fields_and_child_subquery(self):
        rows = self.all_rows("SELECT Id, Account.Name, Account.Website, (SELECT Subject FROM Cases) FROM Contact "
                             "ORDER BY LastName DESC")
        by_id = {r["Id"]: r for r in rows}
        acme = by_id[self.contacts[2]]
        self.assertEqual(acme["Account"]["Name"], "Acme")
        self.assertEqual(acme["Account"]["Website"], "https://www.acme.com")
        self.assertEqual(acme["Account"]["attributes"]["type"], "Account")
        self.assertEqual(acme["Cases"]["totalSize"], 1)
        self.assertEqual(acme["Cases"]["records"][0]["Subject"], "Broken")
        self.assertIsNone(by_id[self.contacts[1]]["Account"])
        self.assertIsNone(by_id[self.contacts[1]]["Cases"])
        rows = self.rows("SELECT Name, (SELECT Email FROM Contacts WHERE Email LIKE 'o%' ORDER BY Email) FROM Account "
                         "WHERE Name = 'Acme'")
        self.assertEqual([c["Email"] for c in rows[0]["Contacts"]["records"]], ["o'brien@x.com"])
        self.assertEqual(self.rows("SELECT Contact.Account.Name FROM Case")[0]["Contact"]["Account"]["Name"], "Acme")

    def test_semi_join(self):
        rows = self.rows("SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE Email LIKE 'pat%')")
        self.assertEqual([r["Name"] for r in rows], ["Acme"])
        rows = self.rows("SELECT Name FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)")
        self.assertEqual([r["Name"] for r in rows], ["Empty Co"])
        self.assertError(self.query("SELECT Id FROM Account WHERE Name IN (SELECT Name FROM Contact)"), 400,
                         "MALFORMED_QUERY")

    def test_custom_fields(self):
        self.assertError(self.query("SELECT Id FROM Contact WHERE Secondary_Email__c = 'x@y.com'"), 400, "INVALID_FIELD")
        self.control("POST", "fields", {"object": "Contact", "fields": [{"name": "Secondary_Email__c", "type": "email",
                                                                          "length": 80}]})
        self.seed({"attributes": {"type": "Contact"}, "LastName": "Alt", "Secondary_Email__c": "X@Y.com"})
        rows = self.rows("SELECT LastName FROM Contact WHERE Email = 'x@y.com' OR Secondary_Email__c = 'x@y.com'")
        self.assertEqual([r["LastName"] for r in rows], ["Alt"])

    def test_leads_filter_on_is_converted(self):
        self.seed({"attributes": {"type": "Lead"}, "LastName": "A", "Company": "C", "Email": "lead@x.com"},
                  {"attributes": {"type": "Lead"}, "LastName": "B", "Company": "C", "Email": "lead@x.com",
                   "IsConverted": True})
        rows = self.rows("SELECT LastName, IsConverted FROM Lead WHERE Email IN ('LEAD@x.com') AND IsConverted = false")
        self.assertEqual(rows[0]["LastName"], "A")
        self.assertEqual(len(rows), 1)

    def test_statement_length_limit(self):
        long_query = "SELECT Id FROM Contact WHERE Email IN (%s)" % ", ".join("'x%d@x.com'" % i for i in range(200))
        self.assertEqual(self.query(long_query).status, 200)
        self.control("POST", "soql-limit", {"max_length": 2000})
        error = self.assertError(self.query(long_query), 400, "MALFORMED_QUERY")
        self.assertIn("too long", error["message"])

    def test_gzip(self):
        answer = self.request("GET", V + "/query?q=" + urllib.parse.quote("SELECT Id, Email FROM Contact"),
                              headers={"Accept-Encoding": "gzip"})
        self.assertEqual(answer.status, 200)
        self.assertEqual(answer.header("Content-Encoding"), "gzip")
        self.assertEqual(answer.json["totalSize"], 5)


class WriteTests(ServerTest):
    def test_create_get_patch_delete(self):
        answer = self.request("POST", V + "/sobjects/Task", {"Subject": "Hello", "Email_Message_ID__c": "<a@b>"})
        self.assertEqual(answer.status, 201, answer.raw)
        task = answer.json["id"]
        self.assertEqual(answer.json, {"id": task, "success": True, "errors": []})
        self.assertTrue(task.startswith("00T") and len(task) == 18)
        self.assertEqual(self.request("GET", V + "/sobjects/Task/" + task).json["Subject"], "Hello")
        self.assertEqual(self.request("PATCH", V + "/sobjects/Task/" + task, {"Subject": "Bye"}).status, 204)
        self.assertEqual(self.records("Task")[0]["Subject"], "Bye")
        self.assertEqual(self.request("DELETE", V + "/sobjects/Task/" + task).status, 204)
        self.assertError(self.request("DELETE", V + "/sobjects/Task/" + task), 404, "ENTITY_IS_DELETED")
        self.assertEqual(self.records("Task"), [])

    def test_field_validation(self):
        error = self.assertError(self.request("POST", V + "/sobjects/Task", {"Subject": "x" * 256}), 400,
                                 "STRING_TOO_LONG")
        self.assertEqual(error["fields"], ["Subject"])
        self.assertIn("max length=255", error["message"])
        self.assertEqual(self.request("POST", V + "/sobjects/Task", {"Subject": "x" * 255}).status, 201)
        self.assertError(self.request("POST", V + "/sobjects/Task", {"Subject": "\U0001F600" * 128}), 400,
                         "STRING_TOO_LONG")  # lengths count UTF-16 code units
        error = self.assertError(self.request("POST", V + "/sobjects/Task", {"Bogus": 1}), 400, "INVALID_FIELD")
        self.assertEqual(error["message"], "No such column 'Bogus' on sobject of type Task")
        error = self.assertError(self.request("POST", V + "/sobjects/Lead", {"FirstName": "A"}), 400,
                                 "REQUIRED_FIELD_MISSING")
        self.assertEqual(error["fields"], ["LastName", "Company"])
        self.assertError(self.request("POST", V + "/sobjects/EmailMessage", {"HtmlBody": "x" * 131073}), 400,
                         "STRING_TOO_LONG")
        self.assertError(self.request("POST", V + "/sobjects/Task", {"WhoId": "nonsense"}), 400, "MALFORMED_ID")
        self.assertError(self.request("POST", V + "/sobjects/Task", {"WhoId": fs.make_id("003", 999)}), 400,
                         "INVALID_CROSS_REFERENCE_KEY")
        self.assertError(self.request("POST", V + "/sobjects/Case", {"CaseNumber": "1"}), 400,
                         "INVALID_FIELD_FOR_INSERT_UPDATE")
        self.assertError(self.request("POST", V + "/sobjects/Task", raw=b"{not json"), 400, "JSON_PARSER_ERROR")
        self.assertError(self.request("GET", V + "/sobjects/Nope/001"), 404, "NOT_FOUND")

    def test_email_message_relations(self):
        contact, lead, user = self.seed(
            {"attributes": {"type": "Contact"}, "LastName": "C", "Email": "c@x.com"},
            {"attributes": {"type": "Lead"}, "LastName": "L", "Company": "Co", "Email": "l@x.com"},
            {"attributes": {"type": "User"}, "LastName": "U", "Username": "u@corp.com", "Email": "u@corp.com"})
        answer = self.request("POST", V + "/sobjects/EmailMessage", {
            "Subject": "Hi", "FromAddress": "U@corp.com", "ToAddress": "c@x.com", "Status": "3",
            "MessageIdentifier": "<m1@x>", "ToIds": [contact], "CcIds": [lead]})
        self.assertEqual(answer.status, 201, answer.raw)
        email = answer.json["id"]
        relations = sorted((r["RelationType"], r["RelationId"]) for r in self.records("EmailMessageRelation"))
        self.assertEqual(relations, sorted([("ToAddress", contact), ("CcAddress", lead), ("FromAddress", user)]))
        rows = self.rows("SELECT Id, (SELECT RelationId, RelationType FROM EmailMessageRelations) FROM EmailMessage "
                         "WHERE MessageIdentifier = '<m1@x>'")
        self.assertEqual(rows[0]["EmailMessageRelations"]["totalSize"], 3)
        rows = self.rows("SELECT EmailMessage.MessageIdentifier FROM EmailMessageRelation WHERE RelationId = '%s'"
                         % contact)
        self.assertEqual(rows[0]["EmailMessage"]["MessageIdentifier"], "<m1@x>")
        self.assertError(self.request("PATCH", V + "/sobjects/EmailMessage/" + email, {"Subject": "x"}), 400,
                         "FIELD_INTEGRITY_EXCEPTION")
        self.assertEqual(self.request("DELETE", V + "/sobjects/EmailMessage/" + email).status, 204)
        self.assertEqual(self.records("EmailMessageRelation"), [])

    def test_request_limit_and_header(self):
        answer = self.query("SELECT Id FROM User")
        self.assertEqual(answer.header("Sforce-Limit-Info"), "api-usage=1/15000")
        self.composite([{"method": "GET", "url": V + "/query?q=SELECT+Id+FROM+User", "referenceId": "a"},
                        {"method": "GET", "url": V + "/query?q=SELECT+Id+FROM+User", "referenceId": "b"}])
        self.assertEqual(self.query("SELECT Id FROM User").header("Sforce-Limit-Info"), "api-usage=3/15000")
        self.control("POST", "limits", {"used": 10, "max": 10})
        answer = self.query("SELECT Id FROM User")
        error = self.assertError(answer, 403, "REQUEST_LIMIT_EXCEEDED")
        self.assertEqual(error["message"], "TotalRequests Limit exceeded.")
        self.assertEqual(answer.header("Sforce-Limit-Info"), "api-usage=11/10")

    def test_body_limit(self):
        with socket.create_connection(("127.0.0.1", self.port)) as connection:
            connection.sendall(b"POST /services/data/v66.0/sobjects/Task HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 20000000\r\n\r\n")
            self.assertIn(b" 413 ", connection.recv(4096))


class CompositeTests(ServerTest):
    def test_references_and_results(self):
        answer = self.composite([
            {"method": "POST", "url": V + "/sobjects/Account", "referenceId": "acc", "body": {"Name": "Acme"}},
            {"method": "POST", "url": V + "/sobjects/Contact", "referenceId": "con",
             "body": {"LastName": "Doe", "AccountId": "@{acc.id}"}},
            {"method": "GET", "url": V + "/query?q=SELECT+Id,+Account.Name+FROM+Contact+WHERE+AccountId+=+'@{acc.id}'",
             "referenceId": "q"},
            {"method": "PATCH", "url": V + "/sobjects/Contact/@{q.records[0].Id}", "referenceId": "upd",
             "body": {"FirstName": "Jane"}},
            {"method": "GET", "url": V + "/sobjects/Contact/@{con.id}?fields=Name", "referenceId": "get"}])
        self.assertEqual(answer.status, 200, answer.raw)
        results = {r["referenceId"]: r for r in answer.json["compositeResponse"]}
        self.assertEqual(results["acc"]["httpStatusCode"], 201)
        self.assertIn("Location", results["acc"]["httpHeaders"])
        self.assertEqual(results["q"]["body"]["records"][0]["Account"]["Name"], "Acme")
        self.assertEqual(results["upd"]["httpStatusCode"], 204)
        self.assertEqual(results["get"]["body"]["Name"], "Jane Doe")
        log = self.control("GET", "log")["requests"]
        self.assertTrue(any("FROM Contact WHERE AccountId" in s for entry in log for s in entry["soql"]))

    def test_all_or_none_rolls_back(self):
        answer = self.composite([
            {"method": "POST", "url": V + "/sobjects/Account", "referenceId": "acc", "body": {"Name": "Acme"}},
            {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "bad", "body": {"Subject": "x" * 300}},
            {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "after", "body": {"Subject": "ok"}}],
            all_or_none=True)
        results = answer.json["compositeResponse"]
        self.assertEqual([r["httpStatusCode"] for r in results], [400, 400, 400])
        self.assertEqual(results[0]["body"][0]["errorCode"], "PROCESSING_HALTED")
        self.assertEqual(results[1]["body"][0]["errorCode"], "STRING_TOO_LONG")
        self.assertEqual(results[2]["body"][0]["errorCode"], "PROCESSING_HALTED")
        self.assertEqual(self.records("Account"), [])
        self.assertEqual(self.records("Task"), [])

    def test_without_all_or_none_keeps_successes(self):
        answer = self.composite([
            {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "bad", "body": {"Subject": "x" * 300}},
            {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "ok", "body": {"Subject": "ok"}},
            {"method": "PATCH", "url": V + "/sobjects/Task/@{bad.id}", "referenceId": "dep", "body": {}}])
        codes = [r["httpStatusCode"] for r in answer.json["compositeResponse"]]
        self.assertEqual(codes, [400, 201, 400])
        self.assertEqual(answer.json["compositeResponse"][2]["body"][0]["errorCode"], "PROCESSING_HALTED")
        self.assertEqual(len(self.records("Task")), 1)

    def test_collection_inside_composite(self):
        answer = self.composite([{"method": "POST", "url": V + "/composite/sobjects", "referenceId": "c", "body": {
            "records": [{"attributes": {"type": "Task"}, "Subject": "a"}]}}])
        self.assertTrue(answer.json["compositeResponse"][0]["body"][0]["success"])
        self.assertEqual(len(self.records("Task")), 1)

    def test_limits(self):
        query = {"method": "GET", "url": V + "/query?q=SELECT+Id+FROM+User"}
        answer = self.composite([dict(query, referenceId="q%d" % i) for i in range(6)])
        self.assertEqual(answer.status, 400)
        self.assertEqual(answer.json["compositeResponse"][0]["body"][0]["errorCode"], "LIMIT_EXCEEDED")
        create = {"method": "POST", "url": V + "/sobjects/Task", "body": {"Subject": "s"}}
        answer = self.composite([dict(create, referenceId="t%d" % i) for i in range(26)])
        self.assertEqual(answer.status, 400)
        self.assertEqual(self.records("Task"), [])
        answer = self.composite([dict(create, referenceId="t%d" % i) for i in range(25)])
        self.assertEqual(answer.status, 200)
        self.assertEqual(len(self.records("Task")), 25)

    def test_graph_and_collections(self):
        answer = self.request("POST", V + "/composite/graph", {"graphs": [
            {"graphId": "g1", "compositeRequest": [
                {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "t", "body": {"Subject": "one"}}]},
            {"graphId": "g2", "compositeRequest": [
                {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "t", "body": {"Subject": "two"}},
                {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "u", "body": {"Nope": 1}}]}]})
        graphs = answer.json["graphs"]
        self.assertEqual([g["isSuccessful"] for g in graphs], [True, False])
        self.assertEqual([t["Subject"] for t in self.records("Task")], ["one"])
        answer = self.request("POST", V + "/composite/sobjects", {"allOrNone": True, "records": [
            {"attributes": {"type": "Task"}, "Subject": "a"}, {"attributes": {"type": "Lead"}, "LastName": "x"}]})
        results = answer.json
        self.assertEqual(results[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK")
        self.assertEqual(results[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING")
        self.assertEqual(len(self.records("Task")), 1)
        answer = self.request("POST", V + "/composite/sobjects", {"records": [
            {"attributes": {"type": "Task"}, "Subject": "a"}, {"attributes": {"type": "Task"}, "Subject": "b"}]})
        ids = [r["id"] for r in answer.json]
        answer = self.request("DELETE", V + "/composite/sobjects?allOrNone=true&ids=" + ",".join(ids))
        self.assertTrue(all(r["success"] for r in answer.json))
        self.assertEqual(len(self.records("Task")), 1)


class UniqueFieldTests(ServerTest):
    FIELD = "Email_Message_ID__c"

    def test_describe_says_which_fields_are_unique(self):
        answer = self.request("GET", V + "/sobjects/Task/describe")
        self.assertEqual(answer.status, 200, answer.raw)
        fields = {f["name"]: f for f in answer.json["fields"]}
        self.assertTrue(fields[self.FIELD]["unique"])
        self.assertTrue(fields[self.FIELD]["externalId"])
        self.assertTrue(fields[self.FIELD]["caseSensitive"])
        self.assertFalse(fields["Subject"]["unique"])

    def test_a_second_record_with_a_unique_value_is_refused_naming_the_first(self):
        first = self.request("POST", V + "/sobjects/Task", {"Subject": "a", self.FIELD: "<m@x>"})
        self.assertEqual(first.status, 201, first.raw)
        second = self.request("POST", V + "/sobjects/Task", {"Subject": "b", self.FIELD: "<m@x>"})
        error = self.assertError(second, 400, "DUPLICATE_VALUE")
        self.assertEqual(error["message"], "duplicate value found: %s duplicates value on record with id: %s"
                         % (self.FIELD, first.json["id"][:15]))
        self.assertEqual(error["fields"], [])
        self.assertEqual(len(self.records("Task")), 1)
        # Case-sensitive: another case is another value.
        self.assertEqual(self.request("POST", V + "/sobjects/Task", {"Subject": "B", self.FIELD: "<M@X>"}).status, 201)
        # Empty values and other values are no duplicates; an update to a taken value is refused too.
        other = self.request("POST", V + "/sobjects/Task", {"Subject": "c", self.FIELD: "<n@x>"})
        self.assertEqual(other.status, 201, other.raw)
        self.assertEqual(self.request("POST", V + "/sobjects/Task", {"Subject": "d"}).status, 201)
        self.assertEqual(self.request("POST", V + "/sobjects/Task", {"Subject": "e"}).status, 201)
        patch = self.request("PATCH", V + "/sobjects/Task/" + other.json["id"], {self.FIELD: "<m@x>"})
        self.assertError(patch, 400, "DUPLICATE_VALUE")

    def test_collections_and_graphs_report_duplicates_per_record(self):
        self.seed({"attributes": {"type": "Task"}, "Subject": "old", self.FIELD: "<m@x>"})
        answer = self.request("POST", V + "/composite/sobjects", {"allOrNone": False, "records": [
            {"attributes": {"type": "Task"}, "Subject": "new", self.FIELD: "<n@x>"},
            {"attributes": {"type": "Task"}, "Subject": "dup", self.FIELD: "<m@x>"},
            {"attributes": {"type": "Task"}, "Subject": "dup in call", self.FIELD: "<n@x>"}]})
        results = answer.json
        self.assertTrue(results[0]["success"])
        self.assertEqual(results[1]["errors"][0]["statusCode"], "DUPLICATE_VALUE")
        self.assertIn("on record with id: ", results[1]["errors"][0]["message"])
        self.assertEqual(results[2]["errors"][0]["message"][-15:], results[0]["id"][:15])
        self.assertEqual(sorted(t["Subject"] for t in self.records("Task")), ["new", "old"])
        answer = self.request("POST", V + "/composite/graph", {"graphs": [
            {"graphId": "g1", "compositeRequest": [
                {"method": "POST", "url": V + "/sobjects/Lead", "referenceId": "l", "body": {"LastName": "L", "Company": "C"}},
                {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "t",
                 "body": {"WhoId": "@{l.id}", self.FIELD: "<m@x>"}}]}]})
        graph = answer.json["graphs"][0]
        self.assertFalse(graph["isSuccessful"])
        codes = [r["body"][0]["errorCode"] for r in graph["graphResponse"]["compositeResponse"]]
        self.assertEqual(codes, ["PROCESSING_HALTED", "DUPLICATE_VALUE"])
        self.assertEqual(self.records("Lead"), [], "the graph rolled back")

    def test_a_field_redefined_changes_what_is_a_duplicate(self):
        try:
            self.control("POST", "fields", {"object": "Task", "fields": [{"name": self.FIELD, "unique": False}]})
            fields = {f["name"]: f for f in self.request("GET", V + "/sobjects/Task/describe").json["fields"]}
            self.assertFalse(fields[self.FIELD]["unique"])
            for _ in range(2):
                self.assertEqual(self.request("POST", V + "/sobjects/Task", {self.FIELD: "<m@x>"}).status, 201)
            # A bare name of a field that exists changes nothing.
            self.control("POST", "fields", {"object": "Task", "fields": [self.FIELD]})
            self.assertEqual(self.request("POST", V + "/sobjects/Task", {self.FIELD: "<m@x>"}).status, 201)
            # Unique but not case-sensitive (Salesforce's default): another case is a duplicate.
            self.control("POST", "reset")
            self.control("POST", "fields", {"object": "Task", "fields": [{"name": self.FIELD, "unique": True}]})
            self.assertEqual(self.request("POST", V + "/sobjects/Task", {self.FIELD: "<m@x>"}).status, 201)
            self.assertError(self.request("POST", V + "/sobjects/Task", {self.FIELD: "<M@X>"}), 400, "DUPLICATE_VALUE")
        finally:
            self.control("POST", "fields", {"object": "Task", "fields": [
                {"name": self.FIELD, "unique": True, "externalId": True, "caseSensitive": True}]})


class ActivityRuleTests(ServerTest):
    def test_an_activity_on_a_lead_relates_to_nothing_else(self):
        lead = self.request("POST", V + "/sobjects/Lead", {"LastName": "L", "Company": "C", "Email": "l@x.example"}).json["id"]
        account = self.request("POST", V + "/sobjects/Account", {"Name": "A"}).json["id"]
        contact = self.request("POST", V + "/sobjects/Contact", {"LastName": "C", "LeadSource": "Email", "AccountId": account})
        self.assertEqual(contact.status, 201)
        self.assertError(self.request("POST", V + "/sobjects/Task", {"Subject": "t", "WhoId": lead, "WhatId": account}),
                         400, "FIELD_INTEGRITY_EXCEPTION")
        self.assertEqual(self.request("POST", V + "/sobjects/Task", {"Subject": "t", "WhoId": lead}).status, 201)
        self.assertEqual(self.request("POST", V + "/sobjects/Task",
                                      {"Subject": "t", "WhoId": contact.json["id"], "WhatId": account}).status, 201)


class FaultTests(ServerTest):
    def create_task(self, subject="t"):
        return self.request("POST", V + "/sobjects/Task", {"Subject": subject})

    def test_status_fault_times_and_match(self):
        self.control("POST", "fault", {"kind": "status", "status": 503, "times": 2, "match": "sobjects/Task"})
        self.assertEqual(self.query("SELECT Id FROM User").status, 200)
        self.assertError(self.create_task(), 503, "SERVER_UNAVAILABLE")
        self.assertError(self.create_task(), 503, "SERVER_UNAVAILABLE")
        self.assertEqual(self.create_task().status, 201)
        self.assertEqual(len(self.records("Task")), 1)

    def test_fault_matches_soql_inside_composite(self):
        self.control("POST", "fault", {"kind": "status", "status": 500, "match": "FROM Lead"})
        answer = self.composite([{"method": "GET", "url": V + "/query?q=SELECT+Id+FROM+Lead", "referenceId": "q"}])
        self.assertError(answer, 500, "UNKNOWN_EXCEPTION")

    def test_error_code_inside_composite(self):
        self.control("POST", "fault", {"kind": "error_code", "code": "UNABLE_TO_LOCK_ROW", "match": "composite"})
        answer = self.composite([
            {"method": "GET", "url": V + "/query?q=SELECT+Id+FROM+User", "referenceId": "q"},
            {"method": "POST", "url": V + "/sobjects/Task", "referenceId": "t", "body": {"Subject": "a"}}],
            all_or_none=True)
        results = answer.json["compositeResponse"]
        self.assertEqual(results[1]["body"][0]["errorCode"], "UNABLE_TO_LOCK_ROW")
        self.assertEqual(results[0]["body"][0]["errorCode"], "PROCESSING_HALTED")
        self.control("POST", "fault", {"kind": "error_code", "code": "UNABLE_TO_LOCK_ROW", "match": "sobjects/Task"})
        self.assertError(self.create_task(), 400, "UNABLE_TO_LOCK_ROW")
        self.assertEqual(self.create_task().status, 201)

    def test_expire_session(self):
        self.control("POST", "fault", {"kind": "expire_session"})
        self.assertError(self.query("SELECT Id FROM User"), 401, "INVALID_SESSION_ID")
        self.token = self.login()
        self.control("POST", "fault", {"kind": "expire_session", "match": "query"})
        self.assertEqual(self.create_task().status, 201)
        self.assertError(self.query("SELECT Id FROM User"), 401, "INVALID_SESSION_ID")

    def test_request_limit(self):
        self.control("POST", "fault", {"kind": "request_limit"})
        self.assertError(self.query("SELECT Id FROM User"), 403, "REQUEST_LIMIT_EXCEEDED")

    def test_slow(self):
        self.control("POST", "fault", {"kind": "slow", "seconds": 0.3})
        started = time.time()
        self.assertEqual(self.query("SELECT Id FROM User").status, 200)
        self.assertGreaterEqual(time.time() - started, 0.3)

    def test_malformed(self):
        self.control("POST", "fault", {"kind": "malformed", "match": "query"})
        answer = self.query("SELECT Id FROM User")
        self.assertEqual(answer.status, 200)
        self.assertRaises(ValueError, lambda: answer.json)

    def test_drop_after_commit(self):
        self.control("POST", "fault", {"kind": "drop_after_commit", "match": "sobjects/Task"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.create_task("kept")
        self.assertEqual([t["Subject"] for t in self.records("Task")], ["kept"])
        log = self.control("GET", "log")["requests"]
        self.assertEqual(log[-1]["status"], "dropped after commit")

    def test_drop_before(self):
        self.control("POST", "fault", {"kind": "drop_before", "match": "sobjects/Task"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.create_task("lost")
        self.assertEqual(self.records("Task"), [])
        self.assertEqual(self.create_task().status, 201)

    def test_fault_on_token_endpoint_and_clear(self):
        self.control("POST", "fault", {"kind": "status", "status": 503, "match": "oauth2", "times": 0})
        self.assertEqual(self.token_request(grant_type="client_credentials").status, 503)
        self.assertEqual(self.token_request(grant_type="client_credentials").status, 503)
        self.control("POST", "fault/clear")
        self.login()

    def test_log(self):
        self.create_task("logged")
        entry = self.control("GET", "log")["requests"][-1]
        self.assertEqual((entry["method"], entry["path"], entry["status"]), ("POST", V + "/sobjects/Task", 201))
        self.assertEqual(entry["body"], {"Subject": "logged"})
        self.control("POST", "log/clear")
        self.assertEqual(self.control("GET", "log")["requests"], [])


class ProcessTests(unittest.TestCase):
    def test_startup_contract_state_file_and_shutdown(self):
        with tempfile.TemporaryDirectory() as directory:
            state = os.path.join(directory, "state.json")
            command = [sys.executable, os.path.join(HERE, "fake_salesforce.py"), "--port", "0", "--public-key",
                       write_public_key(directory), "--state", state]
            for round_number in range(2):
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                try:
                    line = process.stdout.readline()
                    self.assertRegex(line, r"^LISTENING \d+\n$")
                    port = int(line.split()[1])
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    if round_number == 0:
                        connection.request("POST", "/__control/records", json.dumps(
                            {"records": [{"attributes": {"type": "Account"}, "Name": "Kept"}]}))
                        self.assertEqual(connection.getresponse().read().count(b"001"), 1)
                    else:
                        connection.request("GET", "/__control/records?type=Account")
                        names = [r["Name"] for r in json.loads(connection.getresponse().read())["records"]]
                        self.assertEqual(names, ["Kept"])
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    connection.request("POST", "/__control/shutdown")
                    self.assertEqual(connection.getresponse().status, 200)
                    connection.close()
                    self.assertEqual(process.wait(timeout=5), 0)
                finally:
                    if process.poll() is None:
                        process.kill()
                    process.stdout.close()


if __name__ == "__main__":
    unittest.main()
