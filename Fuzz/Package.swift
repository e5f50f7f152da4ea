// swift-tools-version: 6.0
// libFuzzer targets for mailsave's parsers: a package of its own so that the main build
// never links them. scripts/fuzz builds them with -sanitize=fuzzer,address and runs them.
import PackageDescription

let targets: [(name: String, product: String)] = [
    ("fuzz-message", "MailMessage"),
    ("fuzz-address", "MailMessage"),
    ("fuzz-encoded-words", "MailMessage"),
    ("fuzz-parameters", "MailMessage"),
    ("fuzz-date", "MailMessage"),
    ("fuzz-pack", "MailRules"),
    ("fuzz-expression", "MailRules"),
    ("fuzz-record-fields", "MailStore"),
]

let package = Package(
    name: "mailsave-fuzz",
    dependencies: [.package(name: "mailsave", path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["FuzzDriver"]),
    ] + targets.map { target in
        .executableTarget(name: target.name, dependencies: ["FuzzSupport", .product(name: target.product, package: "mailsave")],
                          path: "Sources/\(target.name)")
    },
    swiftLanguageModes: [.v6]
)
