import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Mailsave: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailsave",
        abstract: "Decide which email is saved into Salesforce, explain why, and save it once.",
        discussion: """
        Start with `mailsave inspect examples/messages/01-customer-question.eml` to see what \
        mailsave reads off a message, and `mailsave lint rules/` to check the shipped policy.

        Exit codes: 0 success, 1 problems found (lint, test), 2 usage error, \
        3 could not run (unreadable file), 4 input is not a readable message.
        """,
        version: Mailsave.version,
        subcommands: [Process.self, Explain.self, TestCommand.self, Inspect.self, Lint.self, CRM.self, Ledger.self, Edit.self, Reference.self]
    )

    static let version = "0.2.0"
}

@main
enum Entry {
    static func main() {
        do {
            var command = try Mailsave.parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            Terminal.err("mailsave: " + failure.message)
            exit(failure.status.rawValue)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let status = Mailsave.exitCode(for: error)
            let text = Mailsave.fullMessage(for: error)
            if status == .success {
                Terminal.out(text)
                exit(0)
            }
            Terminal.err(text)
            exit(ExitStatus.usage.rawValue)
        }
    }
}
