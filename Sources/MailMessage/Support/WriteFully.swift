#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes every byte to `descriptor` (again after EINTR and short writes); the errno of the
/// write that failed, or nil. One loop for every caller (standard output, the pack cache's
/// entries, forked jobs' results, the Salesforce token cache), each of which says what a
/// failure means to it (the run stops, a cache entry is not kept, a forked job ends).
public func writeFully(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    guard let base = bytes.baseAddress else { return nil }
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, base + offset, bytes.count - offset)
        if written < 0 && errno == EINTR { continue }
        if written <= 0 { return written < 0 ? errno : EIO }
        offset += written
    }
    return nil
}
