/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Go test
 * binaries under Wine releases that do not ship one (Wine 8 and older).
 *
 * The Go runtime on Windows gets its random seed from ProcessPrng in
 * bcryptprimitives.dll and aborts at start-up if the DLL or the export is
 * missing. Here it is served by RtlGenRandom (advapi32's SystemFunction036),
 * which Wine does implement. RtlGenRandom takes a ULONG length while
 * ProcessPrng takes a SIZE_T, so large requests are split. Windows documents
 * ProcessPrng as never failing; should RtlGenRandom fail, this one says so
 * rather than leave the buffer unfilled in silence.
 *
 * This is test tooling only: it is built by .ci/windows.sh and copied into
 * the Wine prefix, and it is never shipped or committed as a binary.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	while (length > 0) {
		ULONG n = length > 0x40000000 ? 0x40000000 : (ULONG)length;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		length -= n;
	}
	return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
	(void)instance;
	(void)reason;
	(void)reserved;
	return TRUE;
}
