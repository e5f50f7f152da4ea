// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "mailsave",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "mailsave", targets: ["mailsave"]),
        .library(name: "MailMessage", targets: ["MailMessage"]),
        // For the fuzz targets in Fuzz/ (a package of their own, built with libFuzzer).
        .library(name: "MailRules", targets: ["MailRules"]),
        .library(name: "MailStore", targets: ["MailStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // SHA-256 for the compiled-pack cache and over-long Message-IDs (and, with the
        // Salesforce backend, RS256).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // RFC 5322 / MIME parsing, service-email classification, body and signature
        // extraction. Pure: bytes in, values out, no I/O.
        .target(name: "MailMessage"),
        // The rule language: YAML rule packs -> syntax tree with positions -> type check ->
        // compiled program; evaluator; diagnostics; the linter. No I/O but reading files.
        .target(name: "MailRules", dependencies: ["MailMessage", .product(name: "Yams", package: "Yams")]),
        // Facts from a message, its context and CRM look-ups; runs the pack; builds the Decision.
        .target(name: "MailEngine", dependencies: ["MailMessage", "MailRules", .product(name: "Crypto", package: "swift-crypto")]),
        // The embedded CRM and the save-once ledger: SQLite through GRDB.
        .target(name: "MailStore", dependencies: ["MailEngine", "MailMessage", "MailRules", .product(name: "GRDB", package: "GRDB.swift"),
                                             .product(name: "GRDBSQLite", package: "GRDB.swift")]),
        // libcurl's easy API: the Salesforce backend's HTTP client. Its headers only (from
        // libcurl4-openssl-dev); the library is opened when first used (Sources/CCurl/shim.h),
        // so runs that never reach Salesforce do not load it and its dependencies.
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]),
        // The Salesforce REST backend: OAuth, batched SOQL look-ups, composite saves, retries,
        // API-allowance accounting. Not the store, not the CLI.
        .target(
            name: "MailSalesforce",
            dependencies: [
                "MailEngine", "MailRules", "MailMessage", "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "mailsave",
            dependencies: [
                "MailMessage",
                "MailRules",
                "MailEngine",
                "MailStore",
                "MailSalesforce",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            linkerSettings: [
                // The binary's own symbols out of its dynamic symbol table (the static Swift
                // runtime's link arguments export all 17,700 of them; nothing looks them up),
                // so the runtime's start-up dladdr() has 580 names to walk: 0.5-0.7 ms a run.
                .unsafeFlags(["-Xlinker", "--no-export-dynamic"], .when(platforms: [.linux])),
            ]
        ),
        // Release-mode benchmarks; scripts/bench runs them beside their anchors.
        .executableTarget(name: "mailsave-bench", dependencies: ["MailMessage", "MailRules", "MailEngine", "MailStore"]),
        // How time grows with input, shared by the linear-time tests of the parsers and the linter.
        .target(name: "ScalingCheck", path: "Tests/ScalingCheck"),
        // The shipped pack and sample messages, for the test targets that decide with them.
        .target(name: "ShippedFixtures", dependencies: ["MailEngine", "MailRules", "MailMessage"], path: "Tests/ShippedFixtures"),
        // A seeded generator for the tests that mutate or generate input at random.
        .target(name: "SeededRandom", path: "Tests/SeededRandom"),
        .testTarget(name: "MailMessageTests", dependencies: ["MailMessage", "ScalingCheck", "SeededRandom"], exclude: ["Fixtures", "Reference"]),
        .testTarget(name: "MailRulesTests", dependencies: ["MailRules", "ScalingCheck", "SeededRandom"], exclude: ["Reference"]),
        .testTarget(name: "MailEngineTests", dependencies: ["MailEngine", "ShippedFixtures", "ScalingCheck"], exclude: ["Fixtures"]),
        // The Salesforce-compatible test server (Tests/FakeSalesforce) started from Swift tests:
        // shared by the backend's tests and the command line's. Used by tests only.
        .target(name: "SalesforceTestServer", dependencies: ["MailSalesforce", "MailEngine", "MailRules", "ShippedFixtures",
                                                             .product(name: "_CryptoExtras", package: "swift-crypto")],
                path: "Tests/SalesforceTestServer"),
        .testTarget(name: "MailSalesforceTests", dependencies: ["MailSalesforce", "SalesforceTestServer", "MailEngine", "MailRules", "MailMessage", "ShippedFixtures",
                                                                .product(name: "Yams", package: "Yams"),
                                                                .product(name: "Crypto", package: "swift-crypto"),
                                                                .product(name: "_CryptoExtras", package: "swift-crypto")]),
        .testTarget(name: "MailStoreTests", dependencies: ["MailStore", "ShippedFixtures", "SeededRandom", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "MailsaveCLITests", dependencies: ["mailsave", "MailRules", "SalesforceTestServer", "ScalingCheck", "SeededRandom", .product(name: "Crypto", package: "swift-crypto"),
                                                             .product(name: "GRDB", package: "GRDB.swift")],
                    exclude: ["Reference"]),
    ],
    swiftLanguageModes: [.v6]
)
