import ArgumentParser
import Foundation
import MailEngine
import MailSalesforce
import MailStore

/// `--salesforce` and `--salesforce-config`: the org to decide against and save into, for
/// `process`, `explain`, `batch` and `retry`. All Salesforce knowledge stays in
/// MailSalesforce; this only reads the configuration and opens the backend.
struct SalesforceOption: ParsableArguments {
    @Flag(help: "Search (and with --apply save into) a Salesforce org instead of the embedded store, configured by the MAILSAVE_SF_* environment variables (see the README, \"Connect to Salesforce\"). The store still keeps the save-once ledger and the outbox of saves to retry.")
    var salesforce = false

    @Option(name: .customLong("salesforce-config"), help: "A file of MAILSAVE_SF_*=VALUE lines (mode 0600 or stricter: it holds secrets); its values win over the environment's. Implies --salesforce.")
    var salesforceConfig: String?

    /// The two options as plain values (`ProcessFastPath` builds them directly).
    var settings: SalesforceSettings { SalesforceSettings(salesforce: salesforce, salesforceConfig: salesforceConfig) }
    var enabled: Bool { settings.enabled }
    func configuration() throws(CommandFailure) -> SalesforceConfiguration { try settings.configuration() }
    func backend() throws(CommandFailure) -> SalesforceBackend { try settings.backend() }

    /// The name the store's ledger keeps this org's saves under: a sandbox and production,
    /// or two integration users, never answer for each other.
    static func ledgerName(_ configuration: SalesforceConfiguration) -> String {
        "salesforce \(configuration.loginURL) \(configuration.clientID) \(configuration.username ?? "")"
    }

    /// A Salesforce writer behind the store's ledger, parking into the store's outbox.
    static func writer(_ backend: SalesforceBackend, store: CRMStore) -> ActivityWriter {
        LedgeredWriter(store: store, remote: backend, backend: ledgerName(backend.configuration))
    }
}

/// `--salesforce` and `--salesforce-config` as plain values.
struct SalesforceSettings {
    var salesforce = false
    var salesforceConfig: String?

    var enabled: Bool { salesforce || salesforceConfig != nil }

    /// The configuration, or exit 12 naming what is missing or unsafe (never a secret).
    func configuration() throws(CommandFailure) -> SalesforceConfiguration {
        let environment = ProcessInfo.processInfo.environment
        do {
            if let salesforceConfig { return try SalesforceConfiguration.load(file: salesforceConfig, environment: environment) }
            return try SalesforceConfiguration(environment: environment)
        } catch {
            throw CommandFailure(status: .badConfiguration, message: error.description)
        }
    }

    func backend() throws(CommandFailure) -> SalesforceBackend {
        SalesforceBackend(configuration: try configuration())
    }
}
