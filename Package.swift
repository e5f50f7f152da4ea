// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "mailsave",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "mailsave", targets: ["mailsave"]),
        .library(name: "MailMessage", targets: ["MailMessage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // RFC 5322 / MIME parsing, service-email classification, body and signature
        // extraction. Pure: bytes in, values out, no I/O.
        .target(name: "MailMessage"),
        .executableTarget(
            name: "mailsave",
            dependencies: [
                "MailMessage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Release-mode throughput benchmark; scripts/bench-parse runs it beside Python.
        .executableTarget(name: "mailsave-bench", dependencies: ["MailMessage"]),
        .testTarget(name: "MailMessageTests", dependencies: ["MailMessage"], exclude: ["Fixtures", "Reference"]),
        .testTarget(name: "MailsaveCLITests", dependencies: ["mailsave"]),
    ],
    swiftLanguageModes: [.v6]
)
