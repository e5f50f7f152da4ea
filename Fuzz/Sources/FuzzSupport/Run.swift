import FuzzDriver
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) private var testOneInput: (([UInt8]) -> Void)?

/// Runs libFuzzer with the command line's arguments on `body`, which gets each input.
public func runFuzzer(_ body: @escaping ([UInt8]) -> Void) -> Never {
    testOneInput = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        testOneInput?(bytes)
        return 0
    }
    exit(status)
}
