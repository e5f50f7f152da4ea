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
        Start with the sample mailbox:
          mailsave process --mailbox ann@contoso.com --crm examples/crm --format table examples/messages/*.eml
          mailsave explain --mailbox ann@contoso.com --crm examples/crm examples/messages/02-internal-only.eml
          mailsave lint rules/ && mailsave test rules/

        Exit codes: 0 success, 1 problems found (lint, test, diff --fail-on), 2 usage error, \
        3 could not run (unreadable file, damaged or foreign store), 4 input is not a readable \
        message, 5 the rule pack has errors, 6 unreadable CRM export, 7 edit refused (owner, \
        permission), 8 edit: not found, 9 edit: field not editable, 10 edit: link refused, \
        11 decided, but the save is parked in the outbox (run mailsave retry), \
        12 the Salesforce configuration is missing, incomplete or unsafe, \
        75 temporary failure, retry later (disk full, store locked; sysexits EX_TEMPFAIL).
        """,
        version: Mailsave.version,
        subcommands: [Process.self, Batch.self, Diff.self, Explain.self, TestCommand.self, Inspect.self, Lint.self, CRM.self, Ledger.self, Edit.self, Retry.self, Reference.self]
    )

    static let version = "0.2.0"
}

@main
enum Entry {
    static func main() {
        do {
            // `process` once a message: its common command lines skip the parser's reflection.
            let arguments = CommandLine.arguments.dropFirst()
            if arguments.first == "process", let command = ProcessFastPath.parse(Array(arguments.dropFirst())) {
                try command.run(exitingWhenDone: true)
                return
            }
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
            let usage = status == .validationFailure
            Terminal.err(usage ? text : "mailsave: " + text)
            // Only the argument parser's own errors are usage errors; anything else that
            // escaped a command is a failure to run, never reported as "usage".
            exit(usage ? ExitStatus.usage.rawValue : ExitStatus.couldNotRun.rawValue)
        }
    }
}
