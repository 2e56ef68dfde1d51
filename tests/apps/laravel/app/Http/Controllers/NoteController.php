<?php

namespace App\Http\Controllers;

use App\Models\Note;
use Illuminate\Contracts\Http\Kernel;
use Illuminate\Http\Request;
use Illuminate\Routing\Controller;

class NoteController extends Controller
{
    /** The notes, this instance's boot id and request count, and the session's visit counter. */
    public function home(Request $request, Kernel $kernel)
    {
        $visits = $request->session()->get('visits', 0) + 1;
        $request->session()->put('visits', $visits);
        return view('home', [
            'bootId' => $kernel->bootId(),
            'served' => $kernel->served(),
            'visits' => $visits,
            'notes' => Note::query()->orderBy('id')->get(),
            'now' => now(),
        ]);
    }

    /** Stores a posted note, then redirects to the list (post/redirect/get). */
    public function store(Request $request)
    {
        $body = trim((string) $request->input('body', ''));
        if ($body === '') {
            return response("A note needs a body.\n", 422, ['Content-Type' => 'text/plain']);
        }
        $note = Note::create(['body' => $body]);
        return redirect()->route('home')->with('saved', "Saved note #{$note->id}.");
    }

    public function hello(string $name)
    {
        return view('hello', ['name' => $name]);
    }
}
