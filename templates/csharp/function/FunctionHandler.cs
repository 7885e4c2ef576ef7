namespace Function
{
    public class FunctionHandler
    {
        // input: the request body. Returns the response body.
        public string Handle(string input)
        {
            return "Hello from C#! You said: " + input;
        }
    }
}
