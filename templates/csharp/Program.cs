// The template's entry point: one process per request. Reads the whole
// request body from stdin, calls Function.FunctionHandler.Handle, writes
// the answer to stdout. An exception exits non-zero (a 500).
using System;
using System.IO;
using System.Text;

namespace Root
{
    internal static class Program
    {
        private static void Main()
        {
            var utf8 = new UTF8Encoding(false);
            string input;
            using (var stdin = new StreamReader(Console.OpenStandardInput(), utf8))
                input = stdin.ReadToEnd();
            string output = new Function.FunctionHandler().Handle(input);
            using (var stdout = new StreamWriter(Console.OpenStandardOutput(), utf8))
                stdout.Write(output);
        }
    }
}
